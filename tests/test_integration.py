"""On the real Fashion-MNIST (Debian's dataset-fashion-mnist, installed by .ci/run)."""

import csv
import math
import os
from pathlib import Path

import pytest
import torch

import gan
from gan.classifier import FashionClassifier, accuracy, load_classifier
from gan.data import FashionMNISTDataModule
from tests.conftest import ROOT, SYSTEM_DIR, run_script

pytestmark = pytest.mark.integration

if not (SYSTEM_DIR / "train-images-idx3-ubyte.gz").is_file():
    if os.environ.get("CI"):
        raise RuntimeError(f"CI must install dataset-fashion-mnist ({SYSTEM_DIR} is empty)")
    pytest.skip(f"the real data set is not installed in {SYSTEM_DIR}", allow_module_level=True)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    FashionMNISTDataModule(root=str(root), download=False).prepare_data()
    return root


@pytest.fixture(scope="module")
def classifier(data_root: Path) -> FashionClassifier:
    """Trained once (a few minutes) and cached in data_root, where train.py's image metrics find it."""
    return load_classifier(FashionMNISTDataModule(root=str(data_root), download=False))


def test_debian_files_load_as_the_full_data_set(data_root: Path) -> None:
    datamodule = FashionMNISTDataModule(root=str(data_root), download=False)
    datamodule.setup("fit")
    assert datamodule.train_set.images.shape == (60000, 1, 28, 28)
    assert datamodule.test_set.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(datamodule.train_set.labels).tolist() == [6000] * 10
    assert len(datamodule.train_dataloader()) == 60000 // 64


def test_one_epoch_of_the_mlp_on_all_images(data_root: Path, classifier: FashionClassifier, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_script(
        str(ROOT / "train.py"),
        "model=mlp",
        "trainer.max_epochs=1",
        f"data.root={data_root}",
        f"hydra.run.dir={run_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    (history,) = [state for key, state in checkpoint["callbacks"].items() if key.startswith("LossCurve")]
    assert len(history["d_losses"]) == 937 and history["epoch_ends"] == [937]
    assert all(math.isfinite(loss) for loss in history["d_losses"] + history["g_losses"])

    generator = gan.load_generator(run_dir / "checkpoints" / "last.ckpt")
    with torch.no_grad():
        images = generator(torch.randn(64, 100, generator=torch.Generator().manual_seed(0)))
    assert images.std(dim=0).mean() > 0.05  # images differ from each other
    assert images.flatten(1).std(dim=1).min() > 0.05  # and none is a flat grey

    with open(run_dir / "metrics.csv") as file:
        (row,) = csv.DictReader(file)  # measured after the last (here the only) epoch
    assert 0 < float(row["fid"]) < 1000 and 0 < float(row["class_entropy"]) <= 1


def test_classifier_reaches_91_percent_on_the_test_split(data_root: Path, classifier: FashionClassifier) -> None:
    data = FashionMNISTDataModule(root=str(data_root), download=False)
    data.setup("fit")
    assert accuracy(classifier, data.test_set) >= 0.91
