"""The GAN LightningModule: one discriminator step, then one generator step, per batch."""

import functools
import math
import random
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning import LightningModule
from pytorch_lightning.strategies import SingleDeviceStrategy
from pytorch_lightning.utilities import rank_zero_warn
from pytorch_lightning.utilities.model_helpers import is_overridden
from torch import nn
from torch.optim.swa_utils import AveragedModel

from gan.errors import MAX_SEED, UserError, require_bool, require_int, require_number
from gan.graphs import GraphedStep, count_step, set_capturable

CHECKPOINT_FORMAT = 1  # bumped when checkpoints of older code can no longer be loaded
STAT_NAMES = ("loss/d", "loss/g", "D(x)", "D(G(z))")  # logged as NAME_step and NAME_epoch
REFERENCE_BATCH_SIZE = 64  # the lab's batch size, at which model.lr applies unscaled
LR_SCALING = {"none": lambda ratio: 1.0, "linear": lambda ratio: ratio, "sqrt": math.sqrt}
MAX_LR = 1.0  # Adam moves each weight by about lr a step: beyond 1 (weights start near 0.05) training is noise
# Lightning calls these around manual_backward and LightningOptimizer.step; a step without those calls skips them
STEP_HOOKS = ("backward", "on_before_backward", "on_after_backward", "on_before_optimizer_step")
LOSSES = ("bce", "hinge")  # bce: the lab's (non-saturating) binary cross-entropy; hinge: the hinge loss of SAGAN


def lr_scale(lr_scaling: str, batch_size: int) -> float:
    """The factor ``model.lr_scaling`` applies to the learning rates at ``batch_size``."""
    return LR_SCALING[lr_scaling](batch_size / REFERENCE_BATCH_SIZE)


def adam(params: Iterable[nn.Parameter], lr: float, betas: tuple[float, float], fused: bool) -> torch.optim.Adam:
    """Adam; ``fused``: torch's fused kernel, one pass over the weights a step, the same update up to rounding."""
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=fused or None)  # None, not False: torch's default


def ema_with_warmup(decay: float) -> Callable[[list[torch.Tensor], list[torch.Tensor], torch.Tensor], None]:
    """AveragedModel's update for an exponential moving average whose decay grows as (1 + n) / (10 + n) up to
    ``decay``, so the average soon forgets the random initial weights (as TensorFlow's ExponentialMovingAverage)."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor) -> None:
        if not averaged[0].is_floating_point():  # BatchNorm's batch counters
            torch._foreach_copy_(averaged, current)
            return
        step_decay = torch.clamp((1 + num_averaged) / (10 + num_averaged), max=decay)
        differences = torch._foreach_sub(current, averaged)
        torch._foreach_mul_(differences, 1 - step_decay)  # a tensor factor: no sync with the GPU
        torch._foreach_add_(averaged, differences)

    return update


@torch.no_grad()
def update_average(average: AveragedModel, model: nn.Module, started: bool) -> None:
    """``average.update_parameters(model)`` (``use_buffers=True``), without reading ``n_averaged`` from the device.

    ``AveragedModel`` reads it twice a call, and on a GPU each read waits until the queued work has run. ``started``
    tells the same from the host: whether ``average`` has been updated before (``n_averaged > 0``).
    """
    averaged = [*average.module.parameters(), *average.module.buffers()]
    current = [*model.parameters(), *model.buffers()]
    if not started:  # the first update copies the weights
        torch._foreach_copy_(averaged, current)
    else:
        groups: dict[tuple[torch.device, torch.dtype], tuple[list, list]] = {}  # AveragedModel's grouping
        for mean, value in zip(averaged, current, strict=True):
            group = groups.setdefault((mean.device, mean.dtype), ([], []))
            group[0].append(mean)
            group[1].append(value)
        for means, values in groups.values():
            average.multi_avg_fn(means, values, average.n_averaged)
    average.n_averaged += 1


def process_noise(seed: int, epoch: int, rank: int, device: torch.device) -> torch.Generator:
    """The generator of one DDP process's training noise in one epoch, so each process draws other images.

    Every process seeds torch's global generator alike, and must keep it in step: it shuffles the batches, which
    DDP then shares out. Seeded by epoch, a run resumed from an epoch's end draws the same noise.
    """
    process_seed = np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0]
    return torch.Generator(device).manual_seed(int(process_seed))


def discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, loss: str, real_target: float
) -> torch.Tensor:
    """D's loss; ``real_target`` below 1 is one-sided label smoothing (bce only)."""
    if loss == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    real_loss = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_target))
    return real_loss + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al., 2018): the squared norm of the gradient of D's logits at the real images, batch mean."""
    (gradients,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return gradients.pow(2).flatten(1).sum(1).mean()


def discriminator_step_loss(
    discriminator: nn.Module,
    real_images: torch.Tensor,
    fake_images: torch.Tensor,
    loss: str,
    real_target: float,
    r1_gamma: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """D's loss on a real and a generated batch, plus ``r1_gamma / 2`` times the R1 penalty; and D's logits."""
    real_images.requires_grad_(r1_gamma > 0)
    real_logits = discriminator(real_images)
    fake_logits = discriminator(fake_images.detach())
    d_loss = discriminator_loss(real_logits, fake_logits, loss, real_target)
    if r1_gamma:
        d_loss = d_loss + r1_gamma / 2 * r1_penalty(real_logits, real_images)
    return d_loss, real_logits, fake_logits


def generator_loss(g_logits: torch.Tensor, loss: str) -> torch.Tensor:
    """G's loss on D's logits of its images."""
    if loss == "hinge":
        return -g_logits.mean()
    return F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))


def network(name: str, built: Any) -> nn.Module:
    """``built``, the ``model.<name>`` network, if it is a torch module with weights to train."""
    if not isinstance(built, nn.Module) or next(built.parameters(), None) is None:
        raise UserError(f"model.{name}._target_ builds a {type(built).__name__}, not a network with weights")
    return built


class GAN(LightningModule):
    """Trains ``generator`` against ``discriminator`` with Adam; the defaults of the arguments are the lab's loop.

    The networks are given as Hydra configs (``_target_`` dicts) and saved as hyper-parameters,
    so a checkpoint alone rebuilds them (see :func:`gan.load_generator`). The training recipe: ``lr_d`` (the
    discriminator's learning rate, default ``lr``), ``loss`` (one of LOSSES), ``label_smoothing`` (one-sided:
    real images' target is ``1 - label_smoothing``), ``ema_decay`` (above 0, samples come from an exponential
    moving average of the generator's weights and BatchNorm statistics) and ``r1_gamma`` (the weight of D's R1
    gradient penalty on real images, 0 for none). ``fused_adam``: torch's fused Adam kernel (faster, rounds
    differently). ``cuda_graph``: on one CUDA GPU, each batch replays a CUDA graph of the whole step (the same maths).
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
        lr_d: float | None = None,
        loss: str = "bce",
        label_smoothing: float = 0.0,
        ema_decay: float = 0.0,
        r1_gamma: float = 0.0,
        fused_adam: bool = False,
        cuda_graph: bool = False,
    ) -> None:
        super().__init__()
        require_int("model.latent_dim", latent_dim, least=1)
        require_int("model.num_fixed_noise", num_fixed_noise, least=1, most=1024)
        require_int("model.noise_seed", noise_seed, least=0, most=MAX_SEED)
        require_bool("model.channels_last", channels_last)
        require_bool("model.fused_adam", fused_adam)
        require_bool("model.cuda_graph", cuda_graph)
        if not (
            isinstance(betas, list | tuple)
            and len(betas) == 2
            and all(isinstance(beta, float | int) and 0.0 <= beta < 1.0 for beta in betas)
        ):
            raise UserError(f"model.betas must be two numbers in [0, 1) (Adam's), got {betas!r}")
        for name, value in (("lr", lr), ("lr_d", lr if lr_d is None else lr_d)):
            require_number(f"model.{name}", value, positive=True, most=MAX_LR)
        for name, value in (("label_smoothing", label_smoothing), ("ema_decay", ema_decay), ("r1_gamma", r1_gamma)):
            require_number(f"model.{name}", value)
        if lr_scaling not in LR_SCALING:
            raise UserError(f"model.lr_scaling must be one of {', '.join(LR_SCALING)}, got {lr_scaling!r}")
        scale = lr_scale(lr_scaling, batch_size)
        if (largest := max(lr, lr if lr_d is None else lr_d)) * scale > MAX_LR:
            raise UserError(
                f"model.lr_scaling={lr_scaling} multiplies the learning rates by {scale:g} (batch {batch_size} against"
                f" {REFERENCE_BATCH_SIZE}): {largest:g} becomes {largest * scale:g}, above {MAX_LR:g}; lower model.lr"
                " and model.lr_d, or the batch size"
            )
        if loss not in LOSSES:
            raise UserError(f"model.loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        if not 0.0 <= label_smoothing < 1.0 or (label_smoothing and loss != "bce"):
            raise UserError(
                f"model.label_smoothing must be in [0, 1), and 0 unless model.loss=bce; got {label_smoothing!r}"
            )
        if not r1_gamma >= 0.0:
            raise UserError(f"model.r1_gamma must be 0 (off) or positive, got {r1_gamma!r}")
        if not 0.0 <= ema_decay < 1.0:
            raise UserError(f"model.ema_decay must be in [0, 1) (0 turns the average off), got {ema_decay!r}")
        self.save_hyperparameters(logger=False)  # gan.callbacks.LogConfig logs the whole config
        self.automatic_optimization = False
        self.generator: nn.Module = network("generator", instantiate(generator))
        self.discriminator: nn.Module = network("discriminator", instantiate(discriminator))
        self.generator_ema: AveragedModel | None = None
        if ema_decay:
            ema_update = ema_with_warmup(ema_decay)
            self.generator_ema = AveragedModel(self.generator, multi_avg_fn=ema_update, use_buffers=True)
            self.generator_ema.requires_grad_(False)
        fixed_noise = torch.randn(num_fixed_noise, latent_dim, generator=torch.Generator().manual_seed(noise_seed))
        self.register_buffer("fixed_noise", fixed_noise)
        self._epoch_sums: torch.Tensor | None = None
        self._epoch_batches = 0
        self._average_started = False  # whether generator_ema holds an average yet, known on the host
        self._noise: torch.Generator | None = None  # the training noise's generator under DDP; else torch's global one
        # the step without Lightning's wrappers (replayed as a CUDA graph on a GPU); None: through them
        self._direct_step: Callable[[torch.Tensor], torch.Tensor] | None = None

    @property
    def sampler(self) -> nn.Module:
        """The generator that makes the samples: the weights' moving average when there is one."""
        return self.generator if self.generator_ema is None else self.generator_ema.module

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.sampler(z)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        scale = lr_scale(self.hparams.lr_scaling, self.hparams.batch_size)
        lr_d = self.hparams.lr if self.hparams.lr_d is None else self.hparams.lr_d
        betas = tuple(self.hparams.betas)
        fused = self.hparams.fused_adam
        opt_g = adam(self.generator.parameters(), lr=self.hparams.lr * scale, betas=betas, fused=fused)
        opt_d = adam(self.discriminator.parameters(), lr=lr_d * scale, betas=betas, fused=fused)
        return [opt_g, opt_d]

    def on_fit_start(self) -> None:
        if self.hparams.channels_last:
            for net in (self.generator, self.discriminator, self.generator_ema):
                if net is not None:
                    net.to(memory_format=torch.channels_last)

    def on_train_start(self) -> None:
        if self.generator_ema is not None:  # read once here (a resumed run's average has started), not per batch
            self._average_started = bool(self.generator_ema.n_averaged > 0)
        optimizers = [lightning_optimizer.optimizer for lightning_optimizer in self.optimizers()]
        self._direct_step = None
        if not (direct_obstacle := self._direct_step_obstacle()):
            self._direct_step = functools.partial(self._train_batch, *optimizers, backward=torch.Tensor.backward)
        if self.hparams.cuda_graph:
            if obstacle := self._graph_obstacle(direct_obstacle):
                rank_zero_warn(f"model.cuda_graph=true: {obstacle}; this run trains without CUDA graphs")
            else:
                self._direct_step = GraphedStep(self._direct_step, optimizers)
        for optimizer in optimizers:  # after a checkpoint's optimiser states are loaded
            set_capturable(optimizer, isinstance(self._direct_step, GraphedStep))

    def _graph_obstacle(self, direct_obstacle: str | None) -> str | None:
        """Why this run cannot replay its training steps as a CUDA graph, or None; ``direct_obstacle``: why they
        cannot run directly (:meth:`_direct_step_obstacle`), which a graph records."""
        if self.device.type != "cuda":
            return f"it trains on {self.device.type}, not on a CUDA GPU"
        return direct_obstacle

    def _direct_step_obstacle(self) -> str | None:
        """Why this run's steps need Lightning's ``manual_backward`` and ``LightningOptimizer.step``, or None.

        Those dispatch each backward pass and step to every callback's hooks: without them the MLP's benchmark went
        from 0.73 to 0.77 of the hand-written loop's speed (README, Performance).
        """
        if not isinstance(self.trainer.strategy, SingleDeviceStrategy):  # DDP, even with one process
            return f"{type(self.trainer.strategy).__name__} prepares each backward pass (DDP exchanges gradients)"
        if self.trainer.scaler is not None:
            return f"trainer.precision={self.trainer.precision}'s loss scaling reads the gradients' scale at each step"
        for owner in (self, *self.trainer.callbacks):
            if hooks := [hook for hook in STEP_HOOKS if hasattr(owner, hook) and is_overridden(hook, owner)]:
                return f"{type(owner).__name__} implements Lightning's {', '.join(hooks)}"
        return None

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        real_images, _ = batch
        if self.hparams.channels_last:
            real_images = real_images.contiguous(memory_format=torch.channels_last)
        opt_g, opt_d = self.optimizers()
        if self._direct_step is None:
            stats = self._train_batch(opt_g, opt_d, real_images, backward=self.manual_backward)
        else:  # the optimisers' own steps (or a graph of them): counted as Lightning counts its own
            stats = self._direct_step(real_images)
            count_step(opt_d)
            count_step(opt_g)
        self._log_step(stats)
        return dict(zip(STAT_NAMES, stats, strict=True))

    def _train_batch(
        self,
        opt_g: torch.optim.Optimizer,
        opt_d: torch.optim.Optimizer,
        real_images: torch.Tensor,
        backward: Callable[[torch.Tensor], None],
    ) -> torch.Tensor:
        """One D step and one G step on ``real_images``; their losses, D(x) and D(G(z)) stacked."""
        z = torch.randn(real_images.shape[0], self.hparams.latent_dim, device=self.device, generator=self._noise)
        fake_images = self.generator(z)  # one forward pass serves both steps

        loss, real_target = self.hparams.loss, 1.0 - self.hparams.label_smoothing

        with self.toggled_optimizer(opt_d):
            d_loss, real_logits, fake_logits = discriminator_step_loss(
                self.discriminator, real_images, fake_images, loss, real_target, self.hparams.r1_gamma
            )
            opt_d.zero_grad(set_to_none=True)
            backward(d_loss)
            opt_d.step()

        with self.toggled_optimizer(opt_g):
            g_logits = self.discriminator(fake_images)
            g_loss = generator_loss(g_logits, loss)
            opt_g.zero_grad(set_to_none=True)
            backward(g_loss)
            opt_g.step()
        if self.generator_ema is not None:
            update_average(self.generator_ema, self.generator, self._average_started)
            self._average_started = True

        return torch.stack(
            [d_loss, g_loss, torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean()]
        ).detach()

    def _log_step(self, stats: torch.Tensor) -> None:
        """Sum the batch's statistics for the epoch means; hand them to Lightning only on its logging steps.

        A ``self.log`` call costs more than this MLP's whole training step, so the values of other steps are
        only summed (on the device, no sync). ``global_step`` counts two optimiser steps per batch. The logged
        values are copied to the host once: Lightning converts the progress bar's values to numbers after every
        batch, which on a GPU would wait for the queued work each time.
        """
        self._epoch_sums = stats if self._epoch_sums is None else self._epoch_sums + stats
        self._epoch_batches += 1
        every = self.trainer.log_every_n_steps  # 0 turns step logging off
        if every and (self.global_step // 2) % every == 0:  # global_step // 2: the batches done, this one included
            values = dict(zip([f"{name}_step" for name in STAT_NAMES], stats.cpu(), strict=True))
            losses = {name: values.pop(name) for name in ("loss/d_step", "loss/g_step")}
            self.log_dict(losses, on_step=True, on_epoch=False, prog_bar=True)
            self.log_dict(values, on_step=True, on_epoch=False)

    def on_train_epoch_start(self) -> None:
        self._epoch_sums, self._epoch_batches = None, 0
        if self.trainer.world_size > 1:
            self._noise = process_noise(self.hparams.noise_seed, self.current_epoch, self.global_rank, self.device)

    def on_train_epoch_end(self) -> None:
        if self._epoch_sums is not None:
            means = self._epoch_sums / self._epoch_batches
            epoch_stats = {f"{name}_epoch": mean for name, mean in zip(STAT_NAMES, means, strict=True)}
            self.log_dict(epoch_stats, on_step=False, on_epoch=True, prog_bar=False, sync_dist=True)

    @torch.no_grad()
    def sample(self, noise: torch.Tensor) -> torch.Tensor:
        """Images of ``noise`` by the sampling generator, in eval mode (BatchNorm running statistics)."""
        sampler = self.sampler
        was_training = sampler.training
        sampler.eval()
        images = sampler(noise.to(self.device, self.dtype))  # the weights' dtype: trainer.precision=64-true
        sampler.train(was_training)
        return images

    def sample_fixed(self) -> torch.Tensor:
        """Images of the fixed noise (the grids of every epoch)."""
        return self.sample(self.fixed_noise)

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
