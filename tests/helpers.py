"""Test-only classes that train.py runs load through Hydra overrides (``+callbacks.x._target_=tests.helpers...``)."""

import os
from pathlib import Path

import torch
from pytorch_lightning import Callback, LightningModule, Trainer

from gan.module import GAN


class SignalAt(Callback):
    """Sends ``signum`` to this process after batch ``batch`` (with ``mid_batch``, between its D and G steps, twice
    with ``twice``); with ``again``, once more while it shuts down."""

    def __init__(self, batch: int, signum: int, again: bool = False, mid_batch: bool = False, twice: bool = False):
        self.batch, self.signum, self.again, self.mid_batch, self.twice = batch, signum, again, mid_batch, twice

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        if batch_idx == self.batch and not self.mid_batch:
            os.kill(os.getpid(), self.signum)

    def on_before_optimizer_step(self, trainer: Trainer, pl_module: LightningModule, optimizer) -> None:
        if self.mid_batch and trainer.global_step == 2 * self.batch + 1:  # G's step: D has stepped
            for _ in range(2 if self.twice else 1):
                os.kill(os.getpid(), self.signum)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if self.again:
            os.kill(os.getpid(), self.signum)


class DivergingGAN(GAN):
    """A GAN fed NaN images from batch ``nan_from_batch`` on, when its noise seed is 0: real NaN losses and weights."""

    def __init__(self, *args, nan_from_batch: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.nan_from_batch = nan_from_batch
        self.batches_seen = 0

    def training_step(self, batch, batch_idx: int):
        self.batches_seen += 1
        if self.hparams.noise_seed == 0 and self.batches_seen > self.nan_from_batch:
            batch = (batch[0] * float("nan"), batch[1])
        return super().training_step(batch, batch_idx)


class DumpProcessState(Callback):
    """At the end of training, every process saves to ``folder`` its weights and its first batch's mean D(x) and
    D(G(z))."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.first_scores: dict[str, torch.Tensor] = {}

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        if not self.first_scores:
            self.first_scores = {name: outputs[name].cpu() for name in ("D(x)", "D(G(z))")}

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        state = {"weights": pl_module.state_dict()} | self.first_scores
        torch.save(state, self.folder / f"rank{trainer.global_rank}.pt")


class InterruptedGAN(GAN):
    """A GAN whose building is interrupted by Ctrl-C (a KeyboardInterrupt while the run is set up)."""

    def __init__(self, *args, **kwargs) -> None:
        raise KeyboardInterrupt


class CrashingGAN(GAN):
    """A GAN whose training step raises a RuntimeError (as a bug or running out of memory would) when its noise
    seed is 0."""

    def training_step(self, batch, batch_idx: int):
        if self.hparams.noise_seed == 0:
            raise RuntimeError("simulated crash in the training step")
        return super().training_step(batch, batch_idx)
