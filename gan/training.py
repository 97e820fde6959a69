"""Builds the data, model, callbacks, logger and trainer from the Hydra config and fits."""

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning import seed_everything

from gan.errors import UserError


def mixed_precision() -> str:
    """Lightning's precision flag for this GPU: bf16 where supported, else fp16 with loss scaling."""
    return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "16-mixed"


def check_config(cfg: DictConfig) -> None:
    """Refuse settings that would fail late or silently, with one line naming the value and what is allowed."""
    if cfg.trainer.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UserError(
            "hardware=gpu needs an NVIDIA GPU with CUDA, but torch.cuda.is_available() is False here; use hardware=cpu"
        )
    max_epochs = cfg.trainer.max_epochs
    if not isinstance(max_epochs, int) or isinstance(max_epochs, bool) or max_epochs < 1:
        raise UserError(f"trainer.max_epochs must be a positive integer, got {max_epochs!r}")
    batch_size = cfg.data.batch_size
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise UserError(f"data.batch_size must be a positive integer, got {batch_size!r}")


def train(cfg: DictConfig) -> None:
    """Train the GAN that ``cfg`` describes; every output lands in Hydra's run folder."""
    check_config(cfg)
    seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    callbacks = [instantiate(callback) for callback in cfg.callbacks.values()]
    logger = instantiate(cfg.logger)
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger)
    logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
