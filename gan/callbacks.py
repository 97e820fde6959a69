"""Callbacks that leave the lab's artefacts in the run folder and in TensorBoard, and keep runs safe."""

import csv
import math
import os
import re
import shlex
import signal
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from matplotlib.figure import Figure  # the object API draws straight to PNG, with no GUI backend
from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.core.saving import save_hparams_to_yaml
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torchvision.utils import make_grid, save_image

from gan.classifier import load_classifier
from gan.errors import DivergenceError, UserError, require_int, require_seconds
from gan.metrics import (
    KID_SUBSET_SIZE,
    QualityMeter,
    check_features,
    check_inception_package,
    measures_after,
    require_samples,
)

RUN_FOLDER_OVERRIDES = ("hydra.", "resume=", "ckpt_path=")  # what resume= replaces: the folder and the start
METRICS_NOISE_SEED = 0  # every measurement of every run generates its images from the same noise
MAX_METRIC_SAMPLES = 100_000  # 314 MB of generated images in memory at once


def _tensorboard(trainer: Trainer):
    """The TensorBoard SummaryWriter of the run, or None when TensorBoard logging is off."""
    logger = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
    return None if logger is None else logger.experiment


MODELS_FILE, METRICS_FILE, LOSS_CURVE_FILE = "models.txt", "metrics.csv", "loss_curve.png"  # in the output folder
RUN_FILES = (MODELS_FILE, METRICS_FILE, LOSS_CURVE_FILE)


class ModelText(Callback):
    """Prints ``print(G)`` and ``print(D)`` as training starts, writes them to ``models.txt`` and TensorBoard."""

    def __init__(self, output_dir: str) -> None:
        self.path = Path(output_dir) / MODELS_FILE

    @rank_zero_only
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:  # after every check of the run
        text = f"{pl_module.generator}\n{pl_module.discriminator}\n"
        print(text, end="")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(text)
        if (writer := _tensorboard(trainer)) is not None:
            writer.add_text("models", f"```\n{text}```", global_step=0)


class LogConfig(Callback):
    """Logs the run's whole config as TensorBoard's hyper-parameters as training starts (a refused run logs none)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    @rank_zero_only
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        for logger in trainer.loggers:
            logger.log_hyperparams(self.config)
            if isinstance(logger, TensorBoardLogger):  # Lightning wrote its hparams.yaml as fit started, still empty
                save_hparams_to_yaml(Path(logger.log_dir) / logger.NAME_HPARAMS_FILE, logger.hparams)


class SampleGrid(Callback):
    """After each epoch, the fixed-noise images as ``samples/epoch_NNN.png`` and a TensorBoard image."""

    def __init__(self, output_dir: str, nrow: int = 8) -> None:
        self.samples_dir = Path(output_dir) / "samples"
        self.nrow = require_int("callbacks.sample_grid.nrow", nrow, least=1)

    @rank_zero_only
    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        images = pl_module.sample_fixed().float().cpu()
        grid = make_grid(images, nrow=self.nrow, normalize=True, value_range=(-1, 1), pad_value=1.0)
        self.samples_dir.mkdir(parents=True, exist_ok=True)
        save_image(grid, self.samples_dir / f"epoch_{trainer.current_epoch:03d}.png")
        if (writer := _tensorboard(trainer)) is not None:
            writer.add_image("samples/fixed_noise", grid, global_step=trainer.current_epoch)


class ImageQuality(Callback):
    """FID, KID and class coverage of ``num_samples`` generated images against the test split.

    Measured after every ``every_n_epochs``-th epoch and after the last (0: never), on the same noise each time;
    logged to TensorBoard under ``metrics/`` (FID also as ``hp_metric``) and appended to ``metrics.csv``.
    """

    def __init__(
        self,
        output_dir: str,
        features: str = "classifier",
        every_n_epochs: int = 5,
        num_samples: int = 10_000,
    ) -> None:
        check_features(features)
        self.every_n_epochs = require_int("metrics.every_n_epochs", every_n_epochs, least=0)
        if features == "inception" and self.every_n_epochs:
            check_inception_package()
        is_count = isinstance(num_samples, int) and not isinstance(num_samples, bool)
        if not (is_count and 2 <= num_samples <= MAX_METRIC_SAMPLES):
            raise UserError(  # the least is checked against the test split at the start: 1,000 with the real one
                f"metrics.num_samples must be an integer from KID's subset size ({KID_SUBSET_SIZE}) to"
                f" {MAX_METRIC_SAMPLES}, got {num_samples!r}"
            )
        self.num_samples = num_samples
        self.features = features
        self.path = Path(output_dir) / METRICS_FILE
        self.meter: QualityMeter | None = None
        self.seconds: list[float] = []  # how long each measurement took

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.every_n_epochs:
            return
        datamodule = trainer.datamodule
        if not trainer.is_global_zero:  # under DDP, process 0 alone trains and caches the classifier on first use
            trainer.strategy.barrier()
        with torch.random.fork_rng(devices=[]):  # building the classifier draws random weights: not the training's
            classifier = load_classifier(datamodule)
        if trainer.is_global_zero:
            trainer.strategy.barrier()
        self.meter = QualityMeter(datamodule.test_set.images, classifier, self.features, device=pl_module.device)
        self.check_num_samples(len(datamodule.test_set))  # now, not after a measured epoch

    def check_num_samples(self, num_real: int) -> None:
        """Refuse ``num_samples`` below KID's subset size with ``num_real`` real (test) images, or above the most."""
        subset_size = min(KID_SUBSET_SIZE, num_real)
        require_samples(self.num_samples, subset_size, "metrics.num_samples", most=MAX_METRIC_SAMPLES)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        last = epoch == trainer.max_epochs or 0 < trainer.max_steps <= trainer.global_step
        if self.meter is None or not measures_after(epoch, self.every_n_epochs, last):
            return
        start = time.perf_counter()
        noise = torch.randn(
            self.num_samples, pl_module.hparams.latent_dim, generator=torch.Generator().manual_seed(METRICS_NOISE_SEED)
        )
        fake_images = torch.cat([pl_module.sample(batch) for batch in noise.split(self.meter.batch_size)])
        row = self.meter.measure(fake_images).row()
        # every DDP process measures the same weights on the same noise: the mean over them changes nothing
        pl_module.log_dict({f"metrics/{name}": value for name, value in row.items()}, sync_dist=True)
        pl_module.log("hp_metric", row["fid"], sync_dist=True)
        self.seconds.append(time.perf_counter() - start)
        if trainer.is_global_zero:
            self._append({"epoch": trainer.current_epoch, "step": trainer.global_step // 2} | row)
            print(
                f"\nepoch {trainer.current_epoch}: FID {row['fid']:.1f}, KID {row['kid']:.2f},"
                f" class entropy {row['class_entropy']:.3f} ({self.seconds[-1]:.0f} s; {self.path})",
                flush=True,
            )

    def _append(self, row: dict[str, float]) -> None:
        new_file = not self.path.is_file()
        with open(self.path, "a", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(row))
            if new_file:
                writer.writeheader()
            writer.writerow(row)


class DivergenceCheck(Callback):
    """Stops a run whose loss became NaN or infinite, before the epoch's checkpoint could save broken weights.

    The losses stay on the device and are read every ``check_every_n_batches`` batches (one sync) and at each epoch
    end. ``train.py`` adds one when ``callbacks.loss_curve=null`` leaves out the loss curve, which checks them too.
    """

    def __init__(self, check_every_n_batches: int = 50) -> None:
        self.check_every_n_batches = require_int(
            "callbacks.loss_curve.check_every_n_batches", check_every_n_batches, least=1
        )
        self._pending: list[torch.Tensor] = []  # (d, g) pairs not yet read from the device
        self._first_pending_batch = 0  # the number of the first of them, counted from the run's start
        self._epoch = 0

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not self._pending:
            self._first_pending_batch = trainer.global_step // 2  # two optimiser steps a batch
        self._pending.append(torch.stack([outputs["loss/d"], outputs["loss/g"]]))
        self._epoch = trainer.current_epoch
        if len(self._pending) >= self.check_every_n_batches:
            self._flush()

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._flush()

    def _flush(self) -> tuple[list[float], list[float]]:
        """The pending D and G losses, read from the device; a DivergenceError at the first non-finite one."""
        if not self._pending:
            return [], []
        d_losses, g_losses = torch.stack(self._pending).float().cpu().T.tolist()
        self._pending.clear()
        for offset, (d_loss, g_loss) in enumerate(zip(d_losses, g_losses, strict=True)):
            if not (math.isfinite(d_loss) and math.isfinite(g_loss)):
                self._keep(d_losses[:offset], g_losses[:offset])
                name, value = ("loss/d", d_loss) if not math.isfinite(d_loss) else ("loss/g", g_loss)
                raise DivergenceError(
                    f"training diverged: {name} is {value} at batch {self._first_pending_batch + offset}"
                    f" (epoch {self._epoch}); the run stopped, and the checkpoints of the epochs before are kept"
                )
        self._keep(d_losses, g_losses)
        return d_losses, g_losses

    def _keep(self, d_losses: list[float], g_losses: list[float]) -> None:
        """What to do with the losses read, the finite ones before a divergence too: nothing here."""


class LossCurve(DivergenceCheck):
    """Records D and G loss per batch, stops a diverged run (:class:`DivergenceCheck`), and draws
    ``loss_curve.png`` at the end of training or of a run that stops on an error, and after each epoch that ends
    at least ``redraw_seconds`` after the last drawing (a drawing takes 0.1 to 0.2 s, 2 to 4% of a 2-core CPU's MLP
    epoch). The history is part of the checkpoint, so a resumed run draws the whole curve."""

    def __init__(
        self, output_dir: str, smoothing: float = 0.98, check_every_n_batches: int = 50, redraw_seconds: float = 60.0
    ) -> None:
        if not (isinstance(smoothing, float | int) and 0.0 <= smoothing < 1.0):
            raise UserError(f"callbacks.loss_curve.smoothing must be a number in [0, 1), got {smoothing!r}")
        self.redraw_seconds = require_seconds("callbacks.loss_curve.redraw_seconds", redraw_seconds, "each epoch")
        super().__init__(check_every_n_batches)
        self.path = Path(output_dir) / LOSS_CURVE_FILE
        self.smoothing = smoothing
        self._drawn_at = time.monotonic()
        self._drawn_batches = 0  # the batches of the history in the last drawing
        self.d_losses: list[float] = []
        self.g_losses: list[float] = []
        self.epoch_ends: list[int] = []

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._drawn_at = time.monotonic()

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        self.epoch_ends.append(len(self.d_losses))
        if trainer.is_global_zero and time.monotonic() - self._drawn_at >= self.redraw_seconds:
            self.plot()

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.is_global_zero and self._drawn_batches != len(self.d_losses):
            self.plot()

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        """A run stopped by an error (Ctrl-C, SIGTERM, divergence, a crash) draws the curve up to where it stopped."""
        if trainer.is_global_zero:
            # the run is failing already: a NaN since the last check, or a drawing that fails too, must not hide why
            with suppress(Exception):
                with suppress(DivergenceError):  # the curve shows the batches before the NaN
                    self._flush()
                self.plot()

    def _keep(self, d_losses: list[float], g_losses: list[float]) -> None:
        self.d_losses += d_losses
        self.g_losses += g_losses

    def state_dict(self) -> dict[str, list]:
        self._flush()
        return {"d_losses": self.d_losses, "g_losses": self.g_losses, "epoch_ends": self.epoch_ends}

    def load_state_dict(self, state_dict: dict[str, list]) -> None:
        self.d_losses = list(state_dict["d_losses"])
        self.g_losses = list(state_dict["g_losses"])
        self.epoch_ends = list(state_dict["epoch_ends"])

    def _smooth(self, values: list[float]) -> list[float]:
        """Exponential moving average, debiased like TensorBoard's, so early steps are not pulled to zero."""
        smoothed, average = [], 0.0
        for step, value in enumerate(values, start=1):
            average = self.smoothing * average + (1 - self.smoothing) * value
            smoothed.append(average / (1 - self.smoothing**step))
        return smoothed

    def plot(self) -> None:
        if not self.d_losses:
            return
        fig = Figure(figsize=(8, 4.5))
        ax = fig.subplots()
        steps = range(1, len(self.d_losses) + 1)
        for name, losses, color in (("D loss", self.d_losses, "tab:red"), ("G loss", self.g_losses, "tab:blue")):
            ax.plot(steps, losses, color=color, alpha=0.2, linewidth=0.6)
            ax.plot(steps, self._smooth(losses), color=color, label=f"{name} (smoothed)")
        for epoch, end in enumerate(self.epoch_ends):
            ax.axvline(end, color="gray", linestyle="--", linewidth=0.8)
            ax.annotate(
                f"end of epoch {epoch}",
                (end, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(-3, -3),  # inside the frame, left of the line
                textcoords="offset points",
                ha="right",
                va="top",
                fontsize=8,
                color="gray",
            )
        ax.set_xlabel("training step (batch)")
        ax.set_ylabel("loss")
        ax.set_title("Discriminator and generator loss", loc="left")
        ax.legend(loc="lower right", bbox_to_anchor=(1, 1), ncols=2, frameon=False)  # above the frame: no curve hidden
        fig.tight_layout()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(self.path, dpi=120)
        self._drawn_at, self._drawn_batches = time.monotonic(), len(self.d_losses)


class ProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, redrawn at most every ``refresh_seconds`` and after each epoch's last batch.

    A redraw takes about 0.4 ms: after a fixed number of batches, a fast model (the MLP on a CPU, any model on a
    GPU) would redraw far more often than anyone can read, at a cost of a few percent of its training time.
    """

    def __init__(self, refresh_seconds: float = 0.2) -> None:
        super().__init__(refresh_rate=1)  # Lightning's bar may redraw after each batch; on_train_batch_end chooses
        self.refresh_seconds = require_seconds("callbacks.progress_bar.refresh_seconds", refresh_seconds, "each batch")
        self._drawn_at = -math.inf

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.monotonic()
        last = batch_idx + 1 == self.total_train_batches
        if last or now - self._drawn_at >= self.refresh_seconds:
            self._drawn_at = now
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)


class SaveOnInterrupt(Callback):
    """On Ctrl-C or SIGTERM, saves ``last.ckpt`` where the run stands, between two batches; a second Ctrl-C stops at
    once, saving nothing. With :class:`gan.checkpoint.AtomicCheckpointIO`, ``last.ckpt`` is never half written.

    A Ctrl-C in one process waits for the batch to end, as Lightning does for SIGTERM: a checkpoint taken between D's
    step and G's would count a step that the resumed run repeats. DDP's processes stop at once (they must stop
    together).
    """

    def __init__(self, dirpath: str) -> None:
        self.path = Path(dirpath) / "last.ckpt"
        self.stop_requested = False
        self._previous_handler: Any = None  # the SIGINT handler to put back, while ours is installed

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.world_size == 1 and threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGINT, self._request_stop) or signal.default_int_handler

    def _request_stop(self, signum: int, frame: Any) -> None:
        if self.stop_requested:
            self._exit_at_once()
        self.stop_requested = True
        print("\nCtrl-C: stopping before the next batch (Ctrl-C again stops at once)", flush=True)

    def _exit_at_once(self, *_: Any) -> None:
        """Exit now, saving nothing: the checkpoints saved before stay; a half-written one is removed."""
        for partial in self.path.parent.glob("*.partial"):
            partial.unlink(missing_ok=True)
        print(f"\nstopped at once, without saving; the checkpoints saved before stay in {self.path.parent}", flush=True)
        os._exit(130)

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        if self.stop_requested:
            raise KeyboardInterrupt

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._restore_handler()

    def _restore_handler(self) -> None:
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)
            self._previous_handler = None

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        self._restore_handler()
        if not isinstance(exception, KeyboardInterrupt | SIGTERMException):
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._exit_at_once)
        # A run resumed mid-epoch counts one more logged batch than it saved (Lightning expects a checkpoint from
        # within a batch's end, before the count), unless the next batch had not begun: its TensorBoard steps would
        # lie one past an uninterrupted run's.
        epoch_loop, progress = trainer.fit_loop.epoch_loop, trainer.fit_loop.epoch_loop.batch_progress.total
        counted_again = not progress.ready == progress.started == progress.processed == progress.completed
        epoch_loop._batches_that_stepped -= counted_again
        trainer.save_checkpoint(self.path, weights_only=False)
        epoch_loop._batches_that_stepped += counted_again
        if trainer.is_global_zero:
            print(
                f"\ninterrupted in epoch {trainer.current_epoch}: saved {self.path}; continue with:"
                f" {resume_command(self.path.parent.parent)}",
                flush=True,
            )


def resume_command(run_dir: Path) -> str:
    """The command that continues the run in ``run_dir``: ``resume=`` with the run's other overrides, when Hydra
    started it (a sweep's job: that job's)."""
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    kept = [override for override in overrides if not override.lstrip("+~").startswith(RUN_FOLDER_OVERRIDES)]
    return shlex.join(["python", "train.py", f"resume={_hydra_value(str(run_dir))}", *kept])


def _hydra_value(text: str) -> str:
    """``text`` as the value of a Hydra override: quoted where Hydra would read it otherwise (a comma: a sweep)."""
    if re.fullmatch(r"[\w./-]+", text):
        return text
    # Hydra reads a backslash as an escape only before a quote (or the closing quote): double those, escape quotes
    escaped = re.sub(r'(\\*)("|$)', lambda match: match[1] * 2 + ("\\" + match[2] if match[2] else ""), text)
    return f'"{escaped}"'
