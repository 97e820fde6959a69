"""fmnist-gan: the Fashion-MNIST GAN lab as a PyTorch Lightning + Hydra codebase."""

from gan.checkpoint import load_generator

__all__ = ["load_generator"]
