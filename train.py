"""Train a GAN on Fashion-MNIST: ``python train.py model=conv trainer.max_epochs=15``."""

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from gan.errors import UserError
from gan.training import mixed_precision, train

OmegaConf.register_new_resolver("gan_mixed_precision", mixed_precision)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    try:
        train(cfg)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
