"""Shared fixtures: tiny synthetic Fashion-MNIST IDX files, and a runner for the entry points."""

import gzip
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gan.data import IMAGE_MAGIC, LABEL_MAGIC, SPLIT_FILES

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")


def write_idx(path: Path, array: np.ndarray, gzipped: bool = False) -> Path:
    """Write ``array`` (uint8) as an IDX file, the format of the Fashion-MNIST files."""
    magic = IMAGE_MAGIC if array.ndim == 3 else LABEL_MAGIC
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gzipped:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path


def write_fake_fmnist(folder: Path, num_train: int = 96, num_test: int = 32, gzipped: bool = False) -> Path:
    """Four IDX files of random images in ``folder``; labels cycle through the 10 classes."""
    rng = np.random.default_rng(0)
    for split, count in (("train", num_train), ("test", num_test)):
        images_name, labels_name = SPLIT_FILES[split]
        write_idx(folder / images_name, rng.integers(0, 256, (count, 28, 28)), gzipped)
        write_idx(folder / labels_name, np.arange(count) % 10, gzipped)
    return folder


@pytest.fixture(autouse=True)
def keep_visible_gpus() -> Iterator[None]:
    """A CPU run may hide CUDA from its process (gan.training.hide_cuda_without_gpu); the next test sees it."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    yield
    if visible is None:
        os.environ.pop("CUDA_VISIBLE_DEVICES", None)
    else:
        os.environ["CUDA_VISIBLE_DEVICES"] = visible


@pytest.fixture
def fake_data_root(tmp_path: Path) -> Path:
    """A ``data.root`` holding tiny synthetic files in torchvision's ``FashionMNIST/raw`` layout."""
    root = tmp_path / "data"
    write_fake_fmnist(root / "FashionMNIST" / "raw")
    return root


def run_script(*args: str, cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``python <script> args`` as a user would; the result carries stdout and stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def tiny_train_args(data_root: Path, run_dir: Path) -> list[str]:
    """Overrides that make ``train.py`` run in seconds on the synthetic data, offline."""
    return [
        str(ROOT / "train.py"),
        f"data.root={data_root}",
        "data.system_dir=/nonexistent",
        "data.download=false",
        "data.batch_size=32",
        "trainer.max_epochs=2",
        "trainer.log_every_n_steps=1",
        "metrics.num_samples=64",
        f"hydra.run.dir={run_dir}",
    ]
