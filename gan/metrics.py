"""Image quality against real images: torchmetrics' FID and KID, and how evenly samples cover the 10 classes."""

import math
from dataclasses import dataclass

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from gan.classifier import CLASS_NAMES, FashionClassifier
from gan.errors import UserError

FEATURES = ("classifier", "inception")  # the feature network of FID and KID


class ClassifierFeatures(nn.Module):
    """The classifier's 128-unit penultimate layer: torchmetrics' custom feature extractor (images in [-1, 1])."""

    def __init__(self, classifier: FashionClassifier) -> None:
        super().__init__()
        self.features = classifier.features
        self.num_features = classifier.num_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images.float())


def inception_input(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] as the uint8 RGB that torchmetrics' Inception network expects (it resizes them)."""
    return (images.float() + 1).mul(127.5).round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1)


@dataclass
class Quality:
    """The measurements of one set of generated images."""

    fid: float
    kid: float
    kid_std: float
    class_entropy: float  # normalised: 1.0 when all 10 classes are equally frequent
    class_fractions: list[float]

    def row(self) -> dict[str, float]:
        """One flat row, for a CSV file or a logger."""
        classes = {f"class/{name}": fraction for name, fraction in zip(CLASS_NAMES, self.class_fractions, strict=True)}
        return {
            "fid": self.fid,
            "kid": self.kid,
            "kid_std": self.kid_std,
            "class_entropy": self.class_entropy,
        } | classes


def class_entropy(predictions: torch.Tensor) -> tuple[float, list[float]]:
    """The normalised entropy of the predicted classes' histogram, and the histogram as fractions."""
    fractions = torch.bincount(predictions.cpu(), minlength=len(CLASS_NAMES)).double() / len(predictions)
    present = fractions[fractions > 0]
    return float(-(present * present.log()).sum() / math.log(len(CLASS_NAMES))), fractions.tolist()


class QualityMeter(nn.Module):
    """Holds the real images' features once; :meth:`measure` compares a set of generated images to them."""

    def __init__(
        self,
        real_images: torch.Tensor,
        classifier: FashionClassifier,
        features: str = "classifier",
        kid_subset_size: int = 1000,
        batch_size: int = 1000,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__()
        if features not in FEATURES:
            raise UserError(f"metrics.features must be one of {', '.join(FEATURES)}, got {features!r}")
        self.classifier = classifier.eval().requires_grad_(False)
        self.batch_size = batch_size
        self.prepare = inception_input if features == "inception" else lambda images: images
        # the real features are kept across reset(): the test set is read once per run
        options = {"reset_real_features": False, "sync_on_compute": False}
        self.kid_subset_size = min(kid_subset_size, len(real_images))
        if features == "inception":
            self.fid = _inception_fid(options)
            network = self.fid.inception  # one Inception network for both metrics
        else:
            network = ClassifierFeatures(self.classifier)
            self.fid = FrechetInceptionDistance(feature=network, **options)
        self.kid = KernelInceptionDistance(feature=network, subset_size=self.kid_subset_size, **options)
        self.to(device)
        self._update(real_images, real=True)

    @torch.no_grad()
    def _update(self, images: torch.Tensor, real: bool) -> None:
        device = self.kid.device
        for batch in images.split(self.batch_size):
            prepared = self.prepare(batch.to(device))
            self.fid.update(prepared, real=real)
            self.kid.update(prepared, real=real)

    @torch.no_grad()
    def measure(self, fake_images: torch.Tensor) -> Quality:
        """FID, KID and class coverage of ``fake_images`` (in [-1, 1]) against the real images."""
        if len(fake_images) < self.kid_subset_size:
            raise UserError(
                f"metrics.num_samples must be at least {self.kid_subset_size} (the KID subset size),"
                f" got {len(fake_images)}"
            )
        self.fid.reset()
        self.kid.reset()
        self._update(fake_images, real=False)
        kid, kid_std = self.kid.compute()
        predictions = self.classifier.predict(fake_images.to(self.kid.device), chunk=self.batch_size)
        entropy, fractions = class_entropy(predictions)
        return Quality(float(self.fid.compute()), float(kid), float(kid_std), entropy, fractions)


def _inception_fid(options: dict[str, bool]) -> FrechetInceptionDistance:
    """torchmetrics' Inception FID, or one line saying what it needs (torch-fidelity and a download)."""
    try:
        return FrechetInceptionDistance(feature=2048, **options)
    except Exception as error:  # noqa: BLE001 - a missing package, no network or a broken download all end here
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(
            "metrics.features=inception needs the torch-fidelity package (pip install torch-fidelity) and the"
            f" Inception weights from github.com ({reason}); offline, use metrics.features=classifier"
        ) from error
