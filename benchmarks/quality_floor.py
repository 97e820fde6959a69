"""The real-versus-real floor of the image metrics: 10,000 training images measured like generated ones.

    python benchmarks/quality_floor.py [--data-root data] [--features classifier|inception]

A generator whose samples were as good as real images would score about this (FID and KID are biased upwards
for a finite sample, so the floor is not exactly 0). It prints one line per metric.
"""

import argparse
import time

import torch

from gan.classifier import load_classifier
from gan.data import FashionMNISTDataModule
from gan.errors import exit_on_user_error
from gan.metrics import FEATURES, QualityMeter


def measure_floor() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default="data", help="data.root of train.py (default: data)")
    parser.add_argument("--system-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--features", default="classifier", choices=FEATURES)
    parser.add_argument("--num-samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0, help="which training images are drawn")
    args = parser.parse_args()

    datamodule = FashionMNISTDataModule(root=args.data_root, system_dir=args.system_dir)
    classifier = load_classifier(datamodule)
    datamodule.setup("fit")
    if args.num_samples > len(datamodule.train_set):
        parser.error(
            f"--num-samples must be at most {len(datamodule.train_set)} (the training images), got {args.num_samples}"
        )
    meter = QualityMeter(datamodule.test_set.images, classifier, args.features)
    meter.check_num_samples(args.num_samples, "--num-samples")
    start = time.perf_counter()
    chosen = torch.randperm(len(datamodule.train_set), generator=torch.Generator().manual_seed(args.seed))
    quality = meter.measure(datamodule.train_set.images[chosen[: args.num_samples]])
    print(f"{args.num_samples} training images against the {len(datamodule.test_set)} test images ({args.features}):")
    print(f"FID {quality.fid:.2f}")
    print(f"KID {quality.kid:.3f} ± {quality.kid_std:.3f}")
    print(f"class entropy {quality.class_entropy:.3f}")
    print(f"({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    with exit_on_user_error():
        measure_floor()
