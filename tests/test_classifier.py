"""The Fashion-MNIST classifier: deterministic training, and a cache that is rebuilt when it no longer matches."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gan import classifier
from gan.data import FashionMNISTDataModule
from tests.conftest import write_fake_fmnist


def datamodule(root: Path) -> FashionMNISTDataModule:
    return FashionMNISTDataModule(root=str(root), system_dir="/nonexistent", download=False)


def test_training_is_deterministic_and_predicts_a_class_per_image(fake_data_root: Path) -> None:
    data = datamodule(fake_data_root)
    data.prepare_data()
    data.setup("fit")
    first = classifier.train_classifier(data.train_set, epochs=1, seed=3)
    second = classifier.train_classifier(data.train_set, epochs=1, seed=3)
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key
    predictions = first.predict(data.test_set.images)
    assert predictions.shape == (32,) and predictions.min() >= 0 and predictions.max() < 10


def test_pooling_before_relu_gives_the_features_of_the_usual_order() -> None:
    """Caches of weights trained with ReLU before pooling stay valid: the features are the same numbers."""
    model = classifier.FashionClassifier()
    images = torch.randn(16, 1, 28, 28)
    first_conv, second_conv, linear = model.features[0], model.features[3], model.features[7]
    hidden = F.max_pool2d(F.relu(first_conv(images)), 2)
    hidden = F.max_pool2d(F.relu(second_conv(hidden)), 2)
    assert torch.equal(model.features(images), F.relu(linear(hidden.flatten(1))))


def test_cache_is_reused_and_rebuilt_when_data_or_architecture_change(
    fake_data_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    trained = classifier.load_classifier(datamodule(fake_data_root), epochs=1)
    assert "training the Fashion-MNIST classifier once" in capsys.readouterr().out
    assert (fake_data_root / classifier.CACHE_NAME).is_file()

    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should have been used")

    with monkeypatch.context() as patch:
        patch.setattr(classifier, "train_classifier", no_training)
        cached = classifier.load_classifier(datamodule(fake_data_root), epochs=1)
    assert torch.equal(cached.head.weight, trained.head.weight)

    cache = fake_data_root / classifier.CACHE_NAME
    cache.write_bytes(cache.read_bytes()[:100])  # truncated: rebuilt, not a traceback
    classifier.load_classifier(datamodule(fake_data_root), epochs=1)
    assert f"the classifier cached in {cache} is unreadable (" in capsys.readouterr().out
    cache.write_text("not a checkpoint")
    classifier.load_classifier(datamodule(fake_data_root), epochs=1)
    assert "is unreadable (" in capsys.readouterr().out
    saved = torch.load(cache, weights_only=True)
    first = next(iter(saved["state_dict"]))
    saved["state_dict"][first] = torch.zeros(2)  # the right data and settings, weights of the wrong shape
    torch.save(saved, cache)
    classifier.load_classifier(datamodule(fake_data_root), epochs=1)
    assert "is unreadable (Error(s) in loading state_dict for FashionClassifier: size" in capsys.readouterr().out

    write_fake_fmnist(fake_data_root / "FashionMNIST" / "raw", num_train=64)  # other training data
    classifier.load_classifier(datamodule(fake_data_root), epochs=1)
    assert "does not match (data changed): training it again" in capsys.readouterr().out

    monkeypatch.setattr(classifier, "ARCHITECTURE_VERSION", classifier.ARCHITECTURE_VERSION + 1)
    classifier.load_classifier(datamodule(fake_data_root), epochs=1)
    assert "does not match (architecture changed): training it again" in capsys.readouterr().out
