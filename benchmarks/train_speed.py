"""Training throughput: the project's full path against a hand-written PyTorch loop, and data loading alone.

    python benchmarks/train_speed.py [--models mlp conv] [--batches-mlp 917] [--batches-conv 60] [-- override ...]

Every measurement runs in this one process, on the real Fashion-MNIST (``data.root``, default ``data/``), at the
configured batch size (64). Extra arguments are Hydra overrides of ``conf/train.yaml`` for the project's path.
Each project batch is timed right after one hand-written step, so both see the same machine load. Throughput is for
one 937-batch epoch, from the time of a batch after a warm-up (the median over runs of consecutive batches, each as
long as the project's periodic work takes to come round: logging, loss check), plus, for the project,
its epoch-end work (sample grid and checkpoint, and the loss curve and image metrics as often as a run of the
model's default length makes them). The hand-written loop uses the same recipe (learning rates, loss, gradient
penalty, weight average) and memory format (``model.channels_last``). Prints the ratios and peak memory (RSS). With
``hardware=gpu`` both run on the GPU, the hand-written loop with the same mixed precision, and every time is read
once the GPU has finished its queued work.
"""

import argparse
import copy
import math
import resource
import statistics
import tempfile
import time
from collections.abc import Callable

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict
from pytorch_lightning import Callback, Trainer
from torch.optim.swa_utils import AveragedModel

from gan.callbacks import DivergenceCheck, ImageQuality, LossCurve
from gan.data import FashionMNISTDataModule
from gan.errors import exit_on_user_error
from gan.metrics import measures_after
from gan.module import adam, discriminator_step_loss, ema_with_warmup, generator_loss, update_average
from gan.training import CONF_DIR, build, register_resolvers

WARMUP = 20  # batches run before timing starts
TRAIN_IMAGES = 60000
AUTOCAST_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}  # Lightning's precision flags


def clock(device: torch.device) -> float:
    """The time once ``device`` has finished the work queued so far (a GPU runs asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


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
        now = clock(pl_module.device)
        if self.batch_start is not None and batch_idx > WARMUP:
            self.project_seconds.append(now - self.batch_start)
        self.hand_written_step()
        self.batch_start = clock(pl_module.device)
        if batch_idx >= WARMUP:
            self.hand_seconds.append(self.batch_start - now)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.last_end = clock(pl_module.device)

    def on_train_end(self, trainer, pl_module) -> None:
        self.epoch_end_seconds = time.perf_counter() - self.last_end  # sample grid, loss curve, checkpoint


def periodic_batches(cfg: DictConfig) -> int:
    """How many batches the project's periodic work takes to come round: any that many consecutive batches hold one
    logging step and one loss check (the progress bar's redraws come round in time, not in batches)."""
    loss_curve = cfg.callbacks.get("loss_curve")
    # without the curve, train.py adds a DivergenceCheck of its own
    loss_check = loss_curve.check_every_n_batches if loss_curve else DivergenceCheck().check_every_n_batches
    intervals = [cfg.trainer.log_every_n_steps, loss_check]
    return math.lcm(*(interval for interval in intervals if interval > 0))


def batch_seconds(step_seconds: list[float], period: int) -> float:
    """The time of a batch: the median, over runs of ``period`` consecutive batches, of their mean time.

    A run holds the periodic work once, which a median of single batches would leave out; the median over runs
    keeps a noisy machine's pauses out (all batches make one run when there are fewer than ``period``).
    """
    runs = [step_seconds[start : start + period] for start in range(0, len(step_seconds) - period + 1, period)]
    return statistics.median(statistics.fmean(run) for run in runs or [step_seconds])


def images_per_second(seconds_per_batch: float, batch_size: int, epoch_end_seconds: float = 0.0) -> float:
    """Throughput over one epoch of batches that take ``seconds_per_batch``, plus its epoch-end work."""
    batches = TRAIN_IMAGES // batch_size
    return batches * batch_size / (batches * seconds_per_batch + epoch_end_seconds)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def compose_train(model: str, overrides: list[str], out_dir: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=[f"model={model}", f"paths.output_dir={out_dir}", *overrides])


def measurements_per_epoch(cfg: DictConfig) -> float:
    """How often the image metrics run in a run of this config: measurements over epochs."""
    epochs = cfg.trainer.max_epochs
    return (
        sum(measures_after(epoch, cfg.metrics.every_n_epochs, epoch == epochs) for epoch in range(1, epochs + 1))
        / epochs
    )


def drawings_per_epoch(cfg: DictConfig, epoch_seconds: float) -> float:
    """How often the loss curve is drawn in a run of this config whose epochs take ``epoch_seconds``, over its
    epochs: after each epoch that ends ``redraw_seconds`` or more after the last drawing, and at the end."""
    if not cfg.callbacks.get("loss_curve"):
        return 0.0
    drawings, undrawn_seconds = 0, 0.0
    for _ in range(cfg.trainer.max_epochs):
        undrawn_seconds += epoch_seconds
        if undrawn_seconds >= cfg.callbacks.loss_curve.redraw_seconds:
            drawings, undrawn_seconds = drawings + 1, 0.0
    return (drawings + (undrawn_seconds > 0)) / cfg.trainer.max_epochs


def timed_drawings(trainer: Trainer) -> list[float]:
    """The seconds of each drawing of the trainer's loss curve from now on (none without the curve)."""
    seconds: list[float] = []
    for curve in (callback for callback in trainer.callbacks if isinstance(callback, LossCurve)):
        plot = curve.plot

        def timed_plot(plot: Callable[[], None] = plot) -> None:
            start = time.perf_counter()
            plot()
            seconds.append(time.perf_counter() - start)

        curve.plot = timed_plot
    return seconds


def hand_written_step(cfg: DictConfig, real_images: torch.Tensor) -> Callable[[], None]:
    """One step of the same networks (in the same memory format), optimisers, losses, weight average and mixed
    precision in plain PyTorch, on one batch, on the batch's device."""
    model, device = cfg.model, real_images.device
    memory_format = torch.channels_last if model.channels_last else torch.contiguous_format
    real_images = real_images.contiguous(memory_format=memory_format)
    generator = instantiate(model.generator).to(device, memory_format=memory_format)
    discriminator = instantiate(model.discriminator).to(device, memory_format=memory_format)
    betas = tuple(model.betas)
    opt_g = adam(generator.parameters(), lr=model.lr, betas=betas, fused=model.fused_adam)
    opt_d = adam(discriminator.parameters(), lr=model.lr_d, betas=betas, fused=model.fused_adam)
    ema = None
    if model.ema_decay:
        ema = AveragedModel(generator, multi_avg_fn=ema_with_warmup(model.ema_decay), use_buffers=True)
    autocast_dtype = AUTOCAST_DTYPES.get(cfg.trainer.precision)
    scaler = torch.amp.GradScaler(device.type, enabled=autocast_dtype == torch.float16)

    def autocast() -> torch.autocast:
        return torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None)

    average_started = False

    def step() -> None:
        nonlocal average_started
        with autocast():
            fake_images = generator(torch.randn(len(real_images), model.latent_dim, device=device))
            d_loss, _, _ = discriminator_step_loss(
                discriminator, real_images, fake_images, model.loss, 1 - model.label_smoothing, model.r1_gamma
            )
        opt_d.zero_grad(set_to_none=True)
        scaler.scale(d_loss).backward()
        scaler.step(opt_d)
        with autocast():
            g_loss = generator_loss(discriminator(fake_images), model.loss)
        opt_g.zero_grad(set_to_none=True)
        scaler.scale(g_loss).backward()
        scaler.step(opt_g)
        scaler.update()
        if ema is not None:
            update_average(ema, generator, average_started)  # as the project: no GPU sync
            average_started = True

    return step


def compare(
    model: str, batches: int, overrides: list[str], out_dir: str
) -> tuple[float, float, float, int, FashionMNISTDataModule]:
    """Images/s of the project's path (train.py's objects as configured) and of the hand-written loop, interleaved.

    Also returns the seconds of the project's epoch-end work per epoch (grid and checkpoint every epoch; the image
    metrics and the loss curve, each made once here, as often as a run of the model's default length makes them),
    how many batches were timed (fewer than ``batches`` when an epoch is shorter) and the data module.
    """
    cfg = compose_train(model, overrides, out_dir)
    default_run = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.trainer.max_epochs = 1
        cfg.trainer.limit_train_batches = batches + WARMUP
    stopwatch = Stopwatch()
    datamodule, module, trainer = build(cfg, extra_callbacks=[stopwatch])
    drawing_seconds = timed_drawings(trainer)
    datamodule.prepare_data()
    datamodule.setup("fit")  # loaded once: fit finds the data already in memory
    real_images = datamodule.train_set.images[: cfg.data.batch_size].to(trainer.strategy.root_device)
    stopwatch.hand_written_step = hand_written_step(cfg, real_images)
    trainer.fit(module, datamodule=datamodule)
    if len(stopwatch.hand_seconds) < 2:
        raise SystemExit(
            f"error: an epoch of {model} has {trainer.num_training_batches} batches; the benchmark needs at least"
            f" {WARMUP + 2} (a smaller data.batch_size)"
        )
    metrics_seconds = sum(sum(cb.seconds) for cb in trainer.callbacks if isinstance(cb, ImageQuality))
    period = periodic_batches(cfg)
    project_batch = batch_seconds(stopwatch.project_seconds, period)
    hand_batch = batch_seconds(stopwatch.hand_seconds, period)
    epoch_seconds = TRAIN_IMAGES // cfg.data.batch_size * project_batch
    drawings_share = drawings_per_epoch(default_run, epoch_seconds)
    epoch_end = stopwatch.epoch_end_seconds - metrics_seconds + metrics_seconds * measurements_per_epoch(default_run)
    epoch_end += sum(drawing_seconds) * (drawings_share - 1)  # the one drawing here counted as a run makes them
    project = images_per_second(project_batch, cfg.data.batch_size, epoch_end)
    hand = images_per_second(hand_batch, cfg.data.batch_size)
    return project, hand, epoch_end, len(stopwatch.hand_seconds), datamodule


def data_loading(datamodule: FashionMNISTDataModule) -> float:
    """Batches/s of the data module's training loader alone (on the training device), from the median time of a
    batch over one epoch (one pause of a shared machine would otherwise dominate the 937 short batches)."""
    loader = datamodule.train_dataloader()
    device = loader.dataset.images.device
    loader_seconds, start = [], clock(device)
    for _ in loader:
        end = clock(device)
        loader_seconds.append(end - start)
        start = end
    return 1 / statistics.median(loader_seconds)


def timed_batches(text: str) -> int:
    """An argparse type: a number of timed batches, at least 2 (the project's batch times are the gaps between them)."""
    if not text.isdigit() or int(text) < 2:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 2, got {text!r}")
    return int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["mlp", "conv"], choices=["mlp", "conv"])
    parser.add_argument(
        "--batches-mlp", type=timed_batches, default=917, help="timed batches (937 per epoch, 20 warm up)"
    )
    parser.add_argument("--batches-conv", type=timed_batches, default=60)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of conf/train.yaml for the project's path")
    args = parser.parse_args()
    register_resolvers()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, overrides: {args.overrides or 'none'}")
    rows = []
    with tempfile.TemporaryDirectory() as out_dir:
        for model in args.models:
            batches = args.batches_mlp if model == "mlp" else args.batches_conv
            project, hand, epoch_end, timed, datamodule = compare(model, batches, args.overrides, f"{out_dir}/{model}")
            if timed < batches:
                print(f"{model}: an epoch has only {timed + WARMUP} batches: {timed} timed, not {batches}")
            rows.append((model, timed, project, hand))
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
    if torch.cuda.is_initialized():
        gpu_peak = torch.cuda.max_memory_allocated() / 2**20
        print(f"peak GPU memory (allocated by torch): {gpu_peak:,.0f} MiB on {torch.cuda.get_device_name()}")


if __name__ == "__main__":
    with exit_on_user_error():
        main()
