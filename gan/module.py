"""The GAN LightningModule: one discriminator step, then one generator step, per batch."""

import random
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning import LightningModule
from torch import nn

CHECKPOINT_FORMAT = 1  # bumped when checkpoints of older code can no longer be loaded


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
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)  # train.py logs the whole config once
        self.automatic_optimization = False
        self.generator: nn.Module = instantiate(generator)
        self.discriminator: nn.Module = instantiate(discriminator)
        fixed_noise = torch.randn(num_fixed_noise, latent_dim, generator=torch.Generator().manual_seed(noise_seed))
        self.register_buffer("fixed_noise", fixed_noise)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        lr, betas = self.hparams.lr, tuple(self.hparams.betas)
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=lr, betas=betas)
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=betas)
        return [opt_g, opt_d]

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        real_images, _ = batch
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

        losses = {"loss/d": d_loss.detach(), "loss/g": g_loss.detach()}
        self.log_dict(losses, on_step=True, on_epoch=True, prog_bar=True)
        self.log_dict(
            {"D(x)": torch.sigmoid(real_logits.detach()).mean(), "D(G(z))": torch.sigmoid(fake_logits.detach()).mean()},
            on_step=True,
            on_epoch=True,
        )
        return losses

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
