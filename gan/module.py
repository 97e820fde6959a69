"""The GAN LightningModule: one discriminator step, then one generator step, per batch."""

import math
import random
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning import LightningModule
from torch import nn

from gan.errors import UserError

CHECKPOINT_FORMAT = 1  # bumped when checkpoints of older code can no longer be loaded
STAT_NAMES = ("loss/d", "loss/g", "D(x)", "D(G(z))")  # logged as NAME_step and NAME_epoch
REFERENCE_BATCH_SIZE = 64  # the lab's batch size, at which model.lr applies unscaled
LR_SCALING = {"none": lambda ratio: 1.0, "linear": lambda ratio: ratio, "sqrt": math.sqrt}


class GAN(LightningModule):
    """Trains ``generator`` against ``discriminator`` with Adam and the (logit) binary cross-entropy loss.

    The networks are given as Hydra configs (``_target_`` dicts) and saved as hyper-parameters,
    so a checkpoint alone rebuilds them (see :func:`gan.load_generator`).
    """

    def __init__(
        self,
        generator: DictConfig | dict,
        discriminator: DictConfig | dict,
        latent_dim: int = 100,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        num_fixed_noise: int = 64,
        noise_seed: int = 0,
        channels_last: bool = False,
        batch_size: int = 64,
        lr_scaling: str = "none",
    ) -> None:
        super().__init__()
        if lr_scaling not in LR_SCALING:
            raise UserError(f"model.lr_scaling must be one of {', '.join(LR_SCALING)}, got {lr_scaling!r}")
        self.save_hyperparameters(logger=False)  # train.py logs the whole config once
        self.automatic_optimization = False
        self.generator: nn.Module = instantiate(generator)
        self.discriminator: nn.Module = instantiate(discriminator)
        fixed_noise = torch.randn(num_fixed_noise, latent_dim, generator=torch.Generator().manual_seed(noise_seed))
        self.register_buffer("fixed_noise", fixed_noise)
        self._epoch_sums: torch.Tensor | None = None
        self._epoch_batches = 0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        lr = self.hparams.lr * LR_SCALING[self.hparams.lr_scaling](self.hparams.batch_size / REFERENCE_BATCH_SIZE)
        betas = tuple(self.hparams.betas)
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=lr, betas=betas)
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=betas)
        return [opt_g, opt_d]

    def on_fit_start(self) -> None:
        if self.hparams.channels_last:
            self.generator.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        real_images, _ = batch
        if self.hparams.channels_last:
            real_images = real_images.contiguous(memory_format=torch.channels_last)
        opt_g, opt_d = self.optimizers()
        z = torch.randn(real_images.shape[0], self.hparams.latent_dim, device=self.device)
        fake_images = self.generator(z)  # one forward pass serves both steps

        with self.toggled_optimizer(opt_d):
            real_logits = self.discriminator(real_images)
            fake_logits = self.discriminator(fake_images.detach())
            d_loss = F.binary_cross_entropy_with_logits(
                real_logits, torch.ones_like(real_logits)
            ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            opt_d.step()

        with self.toggled_optimizer(opt_g):
            g_logits = self.discriminator(fake_images)
            g_loss = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            opt_g.step()

        stats = torch.stack(
            [d_loss, g_loss, torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean()]
        ).detach()
        self._log_step(stats)
        return dict(zip(STAT_NAMES, stats, strict=True))

    def _log_step(self, stats: torch.Tensor) -> None:
        """Sum the batch's statistics for the epoch means; hand them to Lightning only on its logging steps.

        A ``self.log`` call costs more than this MLP's whole training step, so the values of other steps are
        only summed (on the device, no sync). ``global_step`` counts two optimiser steps per batch.
        """
        self._epoch_sums = stats if self._epoch_sums is None else self._epoch_sums + stats
        self._epoch_batches += 1
        every = self.trainer.log_every_n_steps  # 0 turns step logging off
        if every and (self.global_step // 2) % every == every - 1:
            names = [f"{name}_step" for name in STAT_NAMES]
            self.log_dict(dict(zip(names[:2], stats[:2], strict=True)), on_step=True, on_epoch=False, prog_bar=True)
            self.log_dict(dict(zip(names[2:], stats[2:], strict=True)), on_step=True, on_epoch=False)

    def on_train_epoch_start(self) -> None:
        self._epoch_sums, self._epoch_batches = None, 0

    def on_train_epoch_end(self) -> None:
        if self._epoch_sums is not None:
            means = self._epoch_sums / self._epoch_batches
            epoch_stats = {f"{name}_epoch": mean for name, mean in zip(STAT_NAMES, means, strict=True)}
            self.log_dict(epoch_stats, on_step=False, on_epoch=True, prog_bar=False, sync_dist=True)

    @torch.no_grad()
    def sample_fixed(self) -> torch.Tensor:
        """Images of the fixed noise, generated in eval mode (BatchNorm running statistics)."""
        was_training = self.generator.training
        self.generator.eval()
        images = self.generator(self.fixed_noise)
        self.generator.train(was_training)
        return images

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["gan_format"] = CHECKPOINT_FORMAT
        # with the random states, a resumed run draws the same batches and noise as an uninterrupted one
        checkpoint["rng_states"] = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": np.random.get_state(),
            "python": random.getstate(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if states := checkpoint.get("rng_states"):
            torch.set_rng_state(states["torch"])
            if torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(states["cuda"])
            np.random.set_state(states["numpy"])
            random.setstate(states["python"])
