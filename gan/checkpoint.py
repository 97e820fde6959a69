"""This project's checkpoints: written atomically, read back with checks, the generator rebuilt alone."""

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning_fabric.plugins import TorchCheckpointIO
from torch import nn

from gan.errors import UserError, expand_home, first_line
from gan.module import CHECKPOINT_FORMAT


def model_name(target: str) -> str:
    """The ``model=`` choice of a network's ``_target_``: ``gan.nets.conv.Generator`` -> ``conv``."""
    return target.rsplit(".", 2)[-2]


def whole_epochs(checkpoint: dict[str, Any]) -> int:
    """How many epochs a checkpoint's run has trained to their end (a Ctrl-C checkpoint's own epoch not counted)."""
    return checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"]


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a ``.ckpt`` file of this project into CPU memory, or raise a UserError that says what is wrong with it."""
    if not isinstance(path, str | os.PathLike) or not str(path).strip():
        raise UserError(f"the checkpoint must be the path of a .ckpt file, got {path!r}")
    path = expand_home(path, "checkpoint")
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a .ckpt file (a run keeps its own in checkpoints/)")
    if path.exists() and not path.is_file():
        raise UserError(f"{path} is not a file; give a .ckpt file")
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        # our own checkpoints hold the networks' Hydra configs, which weights_only loading refuses
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except (ImportError, AttributeError) as error:  # it pickles classes of code that is not here
        raise UserError(f"{path} is not a checkpoint of this project: {first_line(error)}") from error
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        raise UserError(f"corrupt or unreadable checkpoint {path}: {first_line(error)}") from error
    if not isinstance(checkpoint, dict) or "gan_format" not in checkpoint:
        raise UserError(f"{path} is not a checkpoint of this project (no 'gan_format' entry)")
    if checkpoint["gan_format"] != CHECKPOINT_FORMAT:
        raise UserError(
            f"{path} has checkpoint format {checkpoint['gan_format']}, this code reads format {CHECKPOINT_FORMAT}"
        )
    if damaged := _damaged_entry(checkpoint):
        raise UserError(f"{path} is a damaged checkpoint of this project: its {damaged} entry is missing or unreadable")
    return checkpoint


def _damaged_entry(checkpoint: dict[str, Any]) -> str | None:
    """The first entry that this code reads from every checkpoint and finds missing or of the wrong kind, or None."""
    readable = {
        "state_dict": lambda: isinstance(checkpoint["state_dict"], dict),
        "hyper_parameters": lambda: isinstance(checkpoint["hyper_parameters"]["generator"]["_target_"], str),
        "global_step": lambda: type(checkpoint["global_step"]) is int and checkpoint["global_step"] >= 0,
        "loops": lambda: type(whole_epochs(checkpoint)) is int and whole_epochs(checkpoint) >= 0,
    }
    for name, is_readable in readable.items():
        try:
            if not is_readable():
                return f"'{name}'"
        except (KeyError, TypeError, IndexError):
            return f"'{name}'"
    return None


def optimiser_states_problem(checkpoint: dict[str, Any]) -> str | None:
    """What is wrong with the optimisers' states that continuing from the checkpoint restores, or None: missing,
    damaged (not G's and D's states) or holding NaN or infinite numbers (a run that diverged)."""
    states = checkpoint.get("optimizer_states")
    if not (
        isinstance(states, list)
        and len(states) == 2  # G's and D's
        and all(isinstance(state, dict) and isinstance(state.get("state"), dict) for state in states)
    ):
        return "its 'optimizer_states' entry is missing or damaged"
    for index, state in enumerate(states):
        if any(non_finite(values) for values in state["state"].values() if isinstance(values, dict)):
            return f"its optimiser state {index} holds NaN or infinite numbers (the run diverged)"
    return None


def weights_problem(saved: dict[str, Any], expected: dict[str, torch.Tensor]) -> str | None:
    """What keeps a checkpoint's state dict (``saved``) from loading into a module whose state dict is ``expected``:
    a missing or unexpected entry, or one of another shape; None when it fits."""
    if missing := [name for name in expected if name not in saved]:
        return f"its weights lack {missing[0]}{' and others' * (len(missing) > 1)}"
    if unexpected := [name for name in saved if name not in expected]:
        return f"its weights hold {unexpected[0]}, which this model has not"
    for name, tensor in expected.items():
        if not isinstance(saved[name], torch.Tensor) or saved[name].shape != tensor.shape:
            shape = tuple(saved[name].shape) if isinstance(saved[name], torch.Tensor) else type(saved[name]).__name__
            return f"its {name} is {shape}, where this model has {tuple(tensor.shape)}"
    return None


def non_finite(tensors: dict[str, Any]) -> list[str]:
    """The names of the floating-point tensors among ``tensors`` (a state dict) that hold a NaN or an infinity."""
    return [
        name
        for name, tensor in tensors.items()
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not tensor.isfinite().all()
    ]


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the generator stored in a ``.ckpt`` file, on ``device``, in eval mode."""
    return finite_generator(read_checkpoint(path), path, device)


def finite_generator(checkpoint: dict[str, Any], path: str | Path, device: str | torch.device) -> nn.Module:
    """The generator of the checkpoint read from ``path``, refused when it holds a NaN or infinite weight (the run
    diverged)."""
    generator = generator_from_checkpoint(checkpoint, device)
    if non_finite(generator.state_dict()):
        raise UserError(
            f"the generator in {path} holds NaN or infinite weights (the run diverged); use an earlier checkpoint of"
            " the run"
        )
    return generator


def available_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch.device this machine has, or a UserError naming it."""
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise UserError(f"device must be a torch device such as 'cpu', 'cuda' or 'cuda:0', got {device!r}") from error
    if device.type == "meta":
        raise UserError("device 'meta' holds no weights; use device='cpu' or 'cuda'")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(
            f"device '{device}' needs an NVIDIA GPU, but torch.cuda.is_available() is False here; use device='cpu'"
        )
    return device


def generator_from_checkpoint(checkpoint: dict[str, Any], device: str | torch.device = "cpu") -> nn.Module:
    """The generator of a checkpoint read by :func:`read_checkpoint`, on ``device``, in eval mode.

    A run with ``model.ema_decay`` gives its moving-average weights: those make its samples.
    """
    state_dict = checkpoint.get("state_dict", {})
    prefix = "generator_ema.module." if any(key.startswith("generator_ema.") for key in state_dict) else "generator."
    try:
        generator = instantiate(checkpoint["hyper_parameters"]["generator"])
        weights = {key[len(prefix) :]: value for key, value in state_dict.items() if key.startswith(prefix)}
        generator.load_state_dict(weights)
    except (KeyError, RuntimeError, InstantiationException) as error:
        raise UserError(f"checkpoint holds no generator this code can rebuild: {first_line(error)}") from error
    try:
        return generator.to(available_device(device)).eval()
    except (RuntimeError, ImportError) as error:  # cuda:3 on a machine with one GPU; hpu without its package
        raise UserError(f"cannot put the generator on device '{device}': {first_line(error)}") from error


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint to a temporary file beside it, then renames it over the old one.

    A crash or a second Ctrl-C while saving leaves the previous checkpoint, never a half-written file.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        try:
            with open(partial, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
