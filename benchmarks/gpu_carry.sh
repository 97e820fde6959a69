#!/usr/bin/env bash
# Packs what the lent GPU machine lacks into .gpu_carry/ (git ignores it): that machine has torch, Lightning and
# torchmetrics but neither Hydra nor internet. Packs the wheels of hydra-core, omegaconf and antlr4 for its Python
# 3.12, the four Fashion-MNIST files gzipped (the data module unpacks them) and the metrics' cached classifier.
#
#     bash benchmarks/gpu_carry.sh [DATA_ROOT]    # DATA_ROOT: a data.root that holds them, default data/
#
# Then one device call: carry [".gpu_carry"], command "bash benchmarks/gpu_check.sh .gpu_carry/data".
set -euo pipefail
cd "$(dirname "$0")/.."
data_root="${1:-data}"
raw=.gpu_carry/data/FashionMNIST/raw
rm -rf .gpu_carry
mkdir -p .gpu_carry/whl "$raw"
version() { python3 -c "import importlib.metadata as m; print(m.version('$1'))"; }
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  -d .gpu_carry/whl "hydra-core==$(version hydra-core)" "omegaconf==$(version omegaconf)"
# antlr4's runtime is pure Python, published only as source: built into a wheel here
python3 -m pip wheel -q --no-deps -w .gpu_carry/whl "antlr4-python3-runtime==$(version antlr4-python3-runtime)"
for name in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  gzip -c "$data_root/FashionMNIST/raw/$name" >"$raw/$name.gz"
done
cp "$data_root/fmnist_classifier.pt" .gpu_carry/data/ 2>/dev/null || echo "no cached classifier in $data_root: the GPU trains one"
du -sh .gpu_carry
