"""Image quality against real images: torchmetrics' FID and KID, and how evenly samples cover the 10 classes."""

import importlib.util
import math
from dataclasses import dataclass

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance, NoTrainInceptionV3
from torchmetrics.image.kid import KernelInceptionDistance

from gan.classifier import CLASS_NAMES, FashionClassifier
from gan.errors import UserError, first_line

FEATURES = ("classifier", "inception")  # the feature network of FID and KID
INCEPTION_NEEDS = (
    "metrics.features=inception needs the torch-fidelity package (pip install torch-fidelity) and the Inception"
    " weights from github.com ({reason}); offline, use metrics.features=classifier"
)
KID_SUBSET_SIZE = 1000  # images per KID subset; with fewer real images, all of them


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
    # p log p sums to at most 0: its absolute value is the entropy, and one class gives 0.0, not -0.0 ("-0.000")
    return float((present * present.log()).sum().abs() / math.log(len(CLASS_NAMES))), fractions.tolist()


def check_features(features: str) -> None:
    """Refuse an unknown ``metrics.features`` with one line naming the choices."""
    if features not in FEATURES:
        raise UserError(f"metrics.features must be one of {', '.join(FEATURES)}, got {features!r}")


def check_inception_package() -> None:
    """Refuse Inception's features without torch-fidelity in one line, before a run starts (its weights are
    downloaded as the metrics are set up)."""
    if importlib.util.find_spec("torch_fidelity") is None:
        raise UserError(INCEPTION_NEEDS.format(reason="torch-fidelity is not installed"))


def require_samples(num_samples: int, subset_size: int, option: str, most: int | None = None) -> None:
    """Refuse fewer samples than KID's ``subset_size`` (or more than ``most``), with one line naming ``option``."""
    if num_samples < subset_size or most is not None and num_samples > most:
        least = f"KID's subset size ({subset_size})"
        allowed = f"at least {least}" if most is None else f"an integer from {least} to {most}"
        raise UserError(f"{option} must be {allowed}, got {num_samples}")


def measures_after(epoch: int, every_n_epochs: int, last: bool) -> bool:
    """Whether the metrics run after ``epoch`` (from 1): every ``every_n_epochs``-th and the ``last``; 0: never."""
    return bool(every_n_epochs) and (epoch % every_n_epochs == 0 or last)


class PrecomputedFeatures(nn.Module):
    """The feature "network" of FID and KID when the meter has computed the features: passes them through."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


class QualityMeter(nn.Module):
    """Holds the real images' features once; :meth:`measure` compares a set of generated images to them.

    Each batch goes through the feature network once; FID, KID and (with the classifier) the classes share it.
    """

    def __init__(
        self,
        real_images: torch.Tensor,
        classifier: FashionClassifier,
        features: str = "classifier",
        kid_subset_size: int = KID_SUBSET_SIZE,
        batch_size: int = 250,  # images per pass (ImageQuality generates as many): fastest on a 2-core CPU
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__()
        check_features(features)
        # channels-last, with batches of 250: the classifier's pass runs 4x faster on the CPU (README, Performance)
        self.classifier = classifier.eval().requires_grad_(False).to(memory_format=torch.channels_last)
        self.batch_size = batch_size
        self.inception = _inception_network() if features == "inception" else None
        num_features = 2048 if self.inception is not None else classifier.num_features
        # the real features are kept across reset(): the test set is read once per run
        options = {"reset_real_features": False, "sync_on_compute": False}
        self.kid_subset_size = min(kid_subset_size, len(real_images))
        self.fid = FrechetInceptionDistance(feature=PrecomputedFeatures(num_features), **options)
        self.kid = KernelInceptionDistance(
            feature=PrecomputedFeatures(num_features), subset_size=self.kid_subset_size, **options
        )
        self.to(device)
        self._update(real_images, real=True)

    @torch.no_grad()
    def _update(self, images: torch.Tensor, real: bool) -> torch.Tensor:
        """Adds the images' features to FID and KID; returns the classifier's class of each image."""
        predictions = []
        for batch in images.split(self.batch_size):
            batch = batch.to(self.kid.device, torch.float, memory_format=torch.channels_last)
            classifier_features = self.classifier.features(batch)
            predictions.append(self.classifier.head(classifier_features).argmax(1))
            features = classifier_features if self.inception is None else self.inception(inception_input(batch))
            self.fid.update(features, real=real)
            self.kid.update(features, real=real)
        return torch.cat(predictions)

    def check_num_samples(self, num_samples: int, option: str = "metrics.num_samples", most: int | None = None) -> None:
        """Refuse fewer samples than KID's subset size (or more than ``most``), with one line naming ``option``."""
        require_samples(num_samples, self.kid_subset_size, option, most)

    @torch.no_grad()
    def measure(self, fake_images: torch.Tensor) -> Quality:
        """FID, KID and class coverage of ``fake_images`` (in [-1, 1]) against the real images."""
        self.check_num_samples(len(fake_images))
        self.fid.reset()
        self.kid.reset()
        predictions = self._update(fake_images, real=False)
        with torch.random.fork_rng(devices=[]):  # KID's random subsets: the same each time, not the caller's numbers
            torch.manual_seed(0)
            kid, kid_std = self.kid.compute()
        entropy, fractions = class_entropy(predictions)
        return Quality(float(self.fid.compute()), float(kid), float(kid_std), entropy, fractions)


def _inception_network() -> nn.Module:
    """torchmetrics' Inception network (2048 features), or one line saying what it needs."""
    try:
        return NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"])
    except Exception as error:  # noqa: BLE001 - a missing package, no network or a broken download all end here
        raise UserError(INCEPTION_NEEDS.format(reason=first_line(error))) from error
