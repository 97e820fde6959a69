"""Measurements of the latent-number study: what setting one latent number does to the generated images.

Pixel distances are mean absolute differences on the [0, 1] grey scale (0.01 is about 2.5 of 255 levels).
"""

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gan.errors import UserError, expand_home, first_line

MIN_CORRELATED = 3  # a correlation over the latent numbers needs at least 3 of them (2 give only +1 or -1)
# A nearly blank image (no garment, one grey level) has under BLANK_SHARE of its pixels more than BLANK_LEVEL (13 of
# 255 grey levels) from its median grey level. Measured on the real Fashion-MNIST images, that share is at least 8.0%
# in each of the 10,000 test images (1% quantile 15%; 4.9% for the least of the 60,000 training images, 9.2% for their
# 0.01% quantile) and 4.7% in the least of 5,000 images of the lab's 3-epoch MLP; that MLP's nearly black images with
# z[0] = 100 have 1.0% to 2.2% (a few stray pixels), a uniform grey one 0%. 3% (24 of 784 pixels) lies between.
BLANK_LEVEL = 0.05
BLANK_SHARE = 0.03


MAX_LATENT_VALUE = 1e6  # far beyond the lab's 100; much larger values overflow the networks' float32


def custom_noise(num_images: int, latent_dim: int, seed: int) -> torch.Tensor:
    """The lab's "custom random numbers": ``num_images`` standard normal vectors, from ``seed``."""
    return torch.randn(num_images, latent_dim, generator=torch.Generator().manual_seed(seed))


def load_noise(path: str | Path, num_images: int, latent_dim: int) -> torch.Tensor:
    """A user's own noise from a ``.pt`` or ``.npy`` file of shape ``num_images x latent_dim``."""
    path = expand_home(path, "latent.noise_file")
    if path.suffix not in (".pt", ".npy"):
        raise UserError(f"latent.noise_file must be a .pt or .npy file, got {path}")
    if not path.is_file():
        if not path.exists():
            raise UserError(f"latent.noise_file not found: {path}")
        kind = "a folder" if path.is_dir() else "not a file"  # a FIFO or a device would block or be endless
        raise UserError(f"latent.noise_file {path} is {kind}; give a .pt or .npy file")
    try:
        with warnings.catch_warnings():  # torch's notes on loading sparse or quantized tensors: not the user's concern
            warnings.simplefilter("ignore")
            loaded = torch.load(path, weights_only=True) if path.suffix == ".pt" else np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray) and not loaded.dtype.isnative:  # saved on a big-endian machine
            loaded = loaded.astype(loaded.dtype.newbyteorder("="))
        loaded = torch.as_tensor(loaded)
        if loaded.is_complex() or loaded.dtype == torch.bool:
            raise UserError(f"latent.noise_file {path} holds {loaded.dtype} values; it must hold real numbers")
        numbers = loaded.to_dense().to("cpu", torch.float64)  # a plain tensor of numbers: not sparse, meta, ...
        finite, largest = bool(numbers.isfinite().all()), float(numbers.abs().max()) if numbers.numel() else 0.0
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001 - any unreadable file: text, empty, a pickled object, ...
        raise UserError(
            f"cannot read latent.noise_file {path} ({first_line(error)}): it must hold one array of real numbers,"
            " saved with torch.save (.pt) or numpy.save (.npy)"
        ) from error
    if tuple(numbers.shape) != (num_images, latent_dim):
        raise UserError(
            f"latent.noise_file {path} has shape {tuple(numbers.shape)}, expected ({num_images}, {latent_dim})"
            " (latent.num_images x the model's latent size)"
        )
    if not finite:
        raise UserError(f"latent.noise_file {path} holds NaN or infinite numbers")
    if largest > MAX_LATENT_VALUE:
        raise UserError(
            f"latent.noise_file {path} holds {largest:,.10g}; its numbers must be within ±{MAX_LATENT_VALUE:,.0f}, like"
            " latent.values"
        )
    return numbers.float()


def set_number(noise: torch.Tensor, dim: int, value: float) -> torch.Tensor:
    """A copy of ``noise`` with latent number ``dim`` of every vector set to ``value``."""
    changed = noise.clone()
    changed[:, dim] = value
    return changed


def set_direction(noise: torch.Tensor, direction: torch.Tensor, value: float) -> torch.Tensor:
    """A copy of ``noise`` whose component along the unit vector ``direction`` is set to ``value``."""
    return noise + (value - noise @ direction)[:, None] * direction


@torch.no_grad()
def generate(generator: nn.Module, noise: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """Images of ``noise`` on the CPU, in float32, generated in chunks on the generator's device."""
    device = next(generator.parameters()).device
    return torch.cat([generator(part.to(device)).float().cpu() for part in noise.split(chunk)])


def image_change(images: torch.Tensor, base_images: torch.Tensor) -> torch.Tensor:
    """Per image, the mean absolute pixel difference from its base image (pixels on [0, 1])."""
    return (images - base_images).abs().flatten(1).mean(1) / 2


def nearly_blank(images: torch.Tensor) -> torch.Tensor:
    """Per image (pixels in [-1, 1]), whether it is nearly blank: one grey level but for under ``BLANK_SHARE`` of it."""
    pixels = (images.flatten(1).float() + 1) / 2
    away = (pixels - pixels.median(1, keepdim=True).values).abs() > BLANK_LEVEL
    return away.float().mean(1) < BLANK_SHARE


def diversity(images: torch.Tensor) -> float:
    """The mean pairwise pixel distance among ``images`` (mean absolute difference, pixels on [0, 1])."""
    flat = images.flatten(1)
    distances = torch.cdist(flat, flat, p=1) / flat.shape[1] / 2
    count = len(flat)
    return float(distances.sum() / (count * (count - 1)))


def first_layer_weight(generator: nn.Module) -> torch.Tensor:
    """The weight ``W`` (outputs x latent) of the first linear layer, which the latent vector enters."""
    layer = next((module for module in generator.modules() if isinstance(module, nn.Linear)), None)
    if layer is None:
        raise UserError(f"{type(generator).__name__} has no linear first layer to explain the latent numbers with")
    return layer.weight.detach().float().cpu()


def sensitivity(generator: nn.Module, noise: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """For each row of ``directions``, the mean image change when every noise vector moves +1 along it."""
    base_images = generate(generator, noise)
    moved = (noise[None] + directions[:, None]).flatten(0, 1)
    changes = image_change(generate(generator, moved), base_images.repeat(len(directions), 1, 1, 1))
    return changes.view(len(directions), len(noise)).mean(1)


def random_directions(count: int, latent_dim: int, seed: int) -> torch.Tensor:
    """``count`` random unit vectors, uniform on the sphere: the null baseline for single numbers."""
    directions = torch.randn(count, latent_dim, generator=torch.Generator().manual_seed(seed))
    return directions / directions.norm(dim=1, keepdim=True)


def sefa_directions(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SeFa: the latent directions that the first layer stretches most (right singular vectors), and the stretches."""
    _, singular_values, right_vectors = torch.linalg.svd(weight, full_matrices=False)
    return right_vectors, singular_values
