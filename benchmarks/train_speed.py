"""Training throughput: the project's full path against a hand-written PyTorch loop, and data loading alone.

    python benchmarks/train_speed.py [--models mlp conv] [--batches-mlp 937] [--batches-conv 60] [override ...]

Every measurement runs in this one process, on the real Fashion-MNIST (``data.root``, default ``data/``), at the
configured batch size (64). Extra arguments are Hydra overrides of ``conf/train.yaml`` for the project's path.
Each project batch is timed right after one hand-written step, so both see the same machine load. Throughput is for
one 937-batch epoch, from the median time of a batch after a warm-up, plus, for the project, its epoch-end work
(sample grid, loss curve, checkpoint). Prints the ratios and peak memory (RSS).
"""

import argparse
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning import Callback

from gan.data import FashionMNISTDataModule
from gan.training import build, register_resolvers

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
WARMUP = 20  # batches run before timing starts
TRAIN_IMAGES = 60000


class Stopwatch(Callback):
    """Times each project batch and, right before it, one hand-written step, so both see the same machine load.

    A project batch runs from one ``on_train_batch_start`` (after the hand-written step) to the next.
    """

    def __init__(self) -> None:
        self.hand_written_step: Callable[[], None] | None = None  # set once the data is loaded
        self.project_seconds: list[float] = []
        self.hand_seconds: list[float] = []
        self.batch_start: float | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        now = time.perf_counter()
        if self.batch_start is not None and batch_idx > WARMUP:
            self.project_seconds.append(now - self.batch_start)
        self.hand_written_step()
        self.batch_start = time.perf_counter()
        if batch_idx >= WARMUP:
            self.hand_seconds.append(self.batch_start - now)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.last_end = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        self.epoch_end_seconds = time.perf_counter() - self.last_end  # sample grid, loss curve, checkpoint


def images_per_second(step_seconds: list[float], batch_size: int, epoch_end_seconds: float = 0.0) -> float:
    """Throughput over one epoch, from the median batch time (robust to a noisy machine) and the epoch-end work."""
    batches = TRAIN_IMAGES // batch_size
    return batches * batch_size / (batches * statistics.median(step_seconds) + epoch_end_seconds)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def compose_train(model: str, batches: int, overrides: list[str], out_dir: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(
            config_name="train",
            overrides=[f"model={model}", "trainer.max_epochs=1", f"+trainer.limit_train_batches={batches + WARMUP}",
                       f"paths.output_dir={out_dir}", *overrides],
        )  # fmt: skip


def hand_written_step(cfg: DictConfig, real_images: torch.Tensor) -> Callable[[], None]:
    """One step of the same networks and optimisers in plain PyTorch, on one in-memory batch."""
    generator, discriminator = instantiate(cfg.model.generator), instantiate(cfg.model.discriminator)
    betas = tuple(cfg.model.betas)
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.model.lr, betas=betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.model.lr, betas=betas)
    ones = torch.ones(len(real_images), 1)
    zeros = torch.zeros(len(real_images), 1)

    def step() -> None:
        fake_images = generator(torch.randn(len(real_images), cfg.model.latent_dim))
        d_loss = F.binary_cross_entropy_with_logits(discriminator(real_images), ones) + (
            F.binary_cross_entropy_with_logits(discriminator(fake_images.detach()), zeros)
        )
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = F.binary_cross_entropy_with_logits(discriminator(fake_images), ones)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

    return step


def compare(
    model: str, batches: int, overrides: list[str], out_dir: str
) -> tuple[float, float, float, FashionMNISTDataModule]:
    """Images/s of the project's path (train.py's objects as configured) and of the hand-written loop, interleaved.

    Also returns the seconds of the project's epoch-end work (grid, loss curve, checkpoint), counted once per epoch.
    """
    cfg = compose_train(model, batches, overrides, out_dir)
    stopwatch = Stopwatch()
    datamodule, module, trainer = build(cfg, extra_callbacks=[stopwatch])
    datamodule.prepare_data()
    datamodule.setup("fit")  # loaded once: fit finds the data already in memory
    stopwatch.hand_written_step = hand_written_step(cfg, datamodule.train_set.images[: cfg.data.batch_size])
    trainer.fit(module, datamodule=datamodule)
    project = images_per_second(stopwatch.project_seconds, cfg.data.batch_size, stopwatch.epoch_end_seconds)
    hand = images_per_second(stopwatch.hand_seconds, cfg.data.batch_size)
    return project, hand, stopwatch.epoch_end_seconds, datamodule


def data_loading(datamodule: FashionMNISTDataModule) -> float:
    """Batches/s of the data module's training loader alone, over one epoch."""
    start = time.perf_counter()
    count = sum(1 for _ in datamodule.train_dataloader())
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["mlp", "conv"], choices=["mlp", "conv"])
    parser.add_argument("--batches-mlp", type=int, default=917, help="timed batches (937 per epoch, 20 warm up)")
    parser.add_argument("--batches-conv", type=int, default=60)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of conf/train.yaml for the project's path")
    args = parser.parse_args()
    register_resolvers()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, overrides: {args.overrides or 'none'}")
    rows = []
    with tempfile.TemporaryDirectory() as out_dir:
        for model in args.models:
            batches = args.batches_mlp if model == "mlp" else args.batches_conv
            project, hand, epoch_end, datamodule = compare(model, batches, args.overrides, out_dir)
            rows.append((model, batches, project, hand))
            print(f"{model}: project {project:,.0f} img/s (epoch-end work {epoch_end:.2f} s),"
                  f" hand-written {hand:,.0f} img/s, ratio {project / hand:.2f}")  # fmt: skip
        loader = data_loading(datamodule)
    print()
    print("| model | timed batches | project (img/s) | hand-written (img/s) | project / hand-written |")
    print("|---|---|---|---|---|")
    for model, batches, project, hand in rows:
        print(f"| {model} | {batches} | {project:,.0f} | {hand:,.0f} | {project / hand:.2f} |")
    batch_size = datamodule.batch_size
    print(f"\ndata loading alone: {loader:,.0f} batches/s ({loader * batch_size:,.0f} img/s)")
    for model, _, project, _ in rows:
        print(f"  {loader / (project / batch_size):.0f}x the {model} training steps/s")
    print(f"peak memory (RSS): {peak_rss_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
