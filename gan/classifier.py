"""A small Fashion-MNIST CNN: the class of a generated image, and the feature network for image metrics.

It is trained once by the project on the training split and cached in ``data.root``; the cache records the
architecture version, the training settings and a fingerprint of the data, and is rebuilt when they change.
"""

import hashlib
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gan.data import SPLIT_FILES, FashionMNISTDataModule, TensorBatches
from gan.errors import first_line

ARCHITECTURE_VERSION = 1  # bump when FashionClassifier changes: cached weights are then retrained
CACHE_NAME = "fmnist_classifier.pt"
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"
)  # fmt: skip


class FashionClassifier(nn.Module):
    """Two convolution blocks and a 128-unit layer (the features), then the 10 class logits."""

    num_features = 128  # the size of the features that feed FID and KID (gan.metrics)

    def __init__(self) -> None:
        super().__init__()
        # pooling before ReLU: the same numbers (ReLU keeps the order), a quarter of the ReLU's work
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
            nn.Flatten(), nn.Linear(64 * 7 * 7, self.num_features), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(self.num_features, len(CLASS_NAMES))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))

    @torch.no_grad()
    def predict(self, images: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
        """The predicted class index of each image (images in [-1, 1], as the generators make them)."""
        return torch.cat([self(part).argmax(1) for part in images.float().split(chunk)])


def data_fingerprint(raw_dir: Path) -> str:
    """A short hash of the training files, so a cache trained on other data is not reused."""
    digest = hashlib.sha256()
    for name in SPLIT_FILES["train"]:
        digest.update((raw_dir / name).read_bytes())
    return digest.hexdigest()[:16]


def train_classifier(train_set: TensorBatches, epochs: int = 3, seed: int = 0) -> FashionClassifier:
    """Adam with a cosine learning-rate decay on shuffled batches of 128; deterministic for a seed on the CPU."""
    with torch.random.fork_rng(devices=[]):  # leaves the caller's random numbers (a GAN run's) as they were
        torch.manual_seed(seed)
        model = FashionClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    batches_per_epoch = -(-len(train_set) // 128)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * batches_per_epoch)
    order = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for indices in torch.randperm(len(train_set), generator=order).split(128):
            images, labels = train_set[indices]
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


def accuracy(model: FashionClassifier, dataset: TensorBatches) -> float:
    return float((model.predict(dataset.images) == dataset.labels).float().mean())


def load_classifier(datamodule: FashionMNISTDataModule, epochs: int = 5, seed: int = 0) -> FashionClassifier:
    """The cached classifier for this data, trained (and cached) first when there is none or it does not match."""
    datamodule.prepare_data()
    cache = datamodule.root / CACHE_NAME
    expected = {
        "architecture": ARCHITECTURE_VERSION,
        "data": data_fingerprint(datamodule.raw_dir),
        "epochs": epochs,
        "seed": seed,
    }
    if cache.is_file():
        model = FashionClassifier()
        try:
            saved = torch.load(cache, weights_only=True)
            meta = dict(saved["meta"])
            if meta == expected:
                model.load_state_dict(saved["state_dict"])
                return model.eval()
        except Exception as error:  # noqa: BLE001 - whatever broke the file, weights included, it is rebuilt
            reason = f"is unreadable ({first_line(error)})"
        else:
            reason = f"does not match ({', '.join(key for key in expected if meta.get(key) != expected[key])} changed)"
        print(f"the classifier cached in {cache} {reason}: training it again")
    print(f"training the Fashion-MNIST classifier once ({epochs} epochs; cached in {cache}) ...", flush=True)
    datamodule.setup("fit")
    model = train_classifier(datamodule.train_set, epochs, seed)
    test_accuracy = accuracy(model, datamodule.test_set)
    print(f"classifier test accuracy: {test_accuracy:.2%}")
    partial = cache.with_name(cache.name + ".partial")
    torch.save({"meta": expected, "state_dict": model.state_dict(), "test_accuracy": test_accuracy}, partial)
    os.replace(partial, cache)
    return model
