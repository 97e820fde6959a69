"""Image-quality metrics: torchmetrics' FID/KID on the classifier's features, class coverage, the training callback."""

import csv
import importlib.util
import math
from pathlib import Path

import pytest
import torch
from torchmetrics.image.fid import FrechetInceptionDistance

from gan.classifier import CLASS_NAMES, FashionClassifier
from gan.errors import UserError
from gan.metrics import PrecomputedFeatures, QualityMeter, class_entropy
from tests.conftest import run_script, tiny_train_args
from tests.test_train import read_events


def random_classifier() -> FashionClassifier:
    torch.manual_seed(0)
    return FashionClassifier().eval()


def test_identical_sets_give_fid_near_zero_and_shifted_sets_more() -> None:
    real_images = torch.rand(400, 1, 28, 28) * 2 - 1
    meter = QualityMeter(real_images, random_classifier(), kid_subset_size=100)
    same = meter.measure(real_images)
    slightly = meter.measure((real_images + 0.1).clamp(-1, 1))
    strongly = meter.measure((real_images + 0.5).clamp(-1, 1))
    assert abs(same.fid) < 1e-3 and abs(same.kid) < 1e-3
    assert 0.01 < slightly.fid < strongly.fid and slightly.kid < strongly.kid
    assert meter.measure(real_images).fid == pytest.approx(same.fid, abs=1e-6)  # the real features are kept


def test_the_meter_measures_what_the_classifier_computes_in_its_ordinary_memory_format() -> None:
    real_images, fake_images = torch.rand(300, 1, 28, 28) * 2 - 1, torch.rand(300, 1, 28, 28) - 1
    classifier = random_classifier()
    with torch.no_grad():
        real_features, fake_features = classifier.features(real_images), classifier.features(fake_images)
        fake_classes = classifier.head(fake_features).argmax(1)
    fid = FrechetInceptionDistance(feature=PrecomputedFeatures(classifier.num_features))
    fid.update(real_features, real=True)
    fid.update(fake_features, real=False)
    quality = QualityMeter(real_images, classifier, kid_subset_size=100, batch_size=64).measure(fake_images)
    assert quality.fid == pytest.approx(float(fid.compute()), rel=1e-4)
    assert quality.class_fractions == class_entropy(fake_classes)[1]


def test_class_entropy_is_one_for_even_classes_and_zero_for_one_class() -> None:
    even, fractions = class_entropy(torch.arange(1000) % 10)
    assert even == pytest.approx(1.0) and fractions == pytest.approx([0.1] * 10)
    one_class, _ = class_entropy(torch.full((50,), 3))
    assert f"{one_class:.3f}" == "0.000"  # not -0.000
    half, _ = class_entropy(torch.tensor([0, 1] * 20))
    assert half == pytest.approx(math.log(2) / math.log(10))


def test_too_few_samples_for_kid_and_unknown_features_are_refused() -> None:
    meter = QualityMeter(torch.zeros(50, 1, 28, 28), random_classifier(), kid_subset_size=40)
    with pytest.raises(UserError, match=r"metrics.num_samples must be at least KID's subset size \(40\), got 10"):
        meter.measure(torch.zeros(10, 1, 28, 28))
    with pytest.raises(UserError, match="metrics.features must be one of classifier, inception, got 'vgg'"):
        QualityMeter(torch.zeros(50, 1, 28, 28), random_classifier(), features="vgg")


def test_inception_without_its_package_or_weights_is_one_clear_error() -> None:
    try:
        QualityMeter(torch.zeros(4, 1, 28, 28), random_classifier(), features="inception", kid_subset_size=2)
    except UserError as error:
        assert "metrics.features=inception needs the torch-fidelity package" in str(error)
        assert "use metrics.features=classifier" in str(error) and "\n" not in str(error)
    else:
        pytest.skip("torch-fidelity and the Inception weights are available here")


def test_inception_without_its_package_is_refused_before_the_run_starts(fake_data_root: Path, tmp_path: Path) -> None:
    if importlib.util.find_spec("torch_fidelity") is not None:
        pytest.skip("torch-fidelity is installed here")
    result = run_script(*tiny_train_args(fake_data_root, tmp_path / "run"), "metrics.features=inception")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: metrics.features=inception needs the torch-fidelity package (pip install torch-fidelity) and the"
        " Inception weights from github.com (torch-fidelity is not installed); offline, use metrics.features=classifier"
    ]
    assert result.stdout == "" and not (tmp_path / "run").exists()  # not Lightning's banner either


def train_and_read_metrics(data_root: Path, run_dir: Path, *overrides: str) -> list[dict[str, str]]:
    """The rows of ``metrics.csv`` of a tiny training run with ``overrides``."""
    result = run_script(*tiny_train_args(data_root, run_dir), *overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(run_dir / "metrics.csv") as file:
        return list(csv.DictReader(file))


def test_training_logs_the_metrics_to_tensorboard_and_csv(fake_data_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    rows = train_and_read_metrics(fake_data_root, run_dir, "trainer.max_epochs=3", "metrics.every_n_epochs=2")
    assert [row["epoch"] for row in rows] == ["1", "2"]  # every 2nd epoch, and the last
    for row in rows:
        assert float(row["fid"]) > 0 and 0 <= float(row["class_entropy"]) <= 1
        assert sum(float(row[f"class/{name}"]) for name in CLASS_NAMES) == pytest.approx(1.0)
    events = read_events(run_dir)
    fids = [event.value for event in events.Scalars("metrics/fid")]
    assert fids == pytest.approx([float(row["fid"]) for row in rows])
    assert [event.value for event in events.Scalars("hp_metric")][-2:] == pytest.approx(fids)
    assert "metrics/class_entropy" in events.Tags()["scalars"]


def test_metrics_can_be_turned_off(fake_data_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_script(*tiny_train_args(fake_data_root, run_dir), "metrics.every_n_epochs=0")
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (run_dir / "metrics.csv").exists()
    assert not (fake_data_root / "fmnist_classifier.pt").exists()  # no classifier trained for nothing


def test_measuring_does_not_change_the_training(fake_data_root: Path, tmp_path: Path) -> None:
    weights = []
    # the first run trains and caches the classifier, the second reads it from the cache
    for name, every in (("measured", 1), ("measured_again", 1), ("not_measured", 0)):
        run_dir = tmp_path / name
        result = run_script(*tiny_train_args(fake_data_root, run_dir), f"metrics.every_n_epochs={every}")
        assert result.returncode == 0, result.stderr[-3000:]
        weights.append(torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"])
    assert (tmp_path / "measured" / "metrics.csv").is_file()
    for other in weights[1:]:
        for key, value in weights[0].items():
            assert torch.equal(value, other[key]), key


def test_a_run_stopped_by_max_steps_is_measured_at_its_end(fake_data_root: Path, tmp_path: Path) -> None:
    rows = train_and_read_metrics(fake_data_root, tmp_path / "run", "trainer.max_epochs=3", "trainer.max_steps=8")
    assert [(row["epoch"], row["step"]) for row in rows] == [("1", "4")]  # 8 optimiser steps: 4 batches, in epoch 1
