#!/usr/bin/env bash
# The GPU measurements that decide issue 5, in one call: the CUDA-only tests, the benchmark with hardware=gpu, and
# the wall time of the lab's 15-epoch conv run (the README's "On a GPU" lists these and more).
#
#     bash benchmarks/gpu_check.sh [DATA_ROOT]    # DATA_ROOT: data.root, default data/
#
# On the lent GPU machine (no Hydra, no internet): bash benchmarks/gpu_carry.sh here first, then carry .gpu_carry
# and pass .gpu_carry/data as DATA_ROOT.
#
# The benchmark runs before the timed run, so the image metrics' classifier is trained (once per data.root) outside
# the time. Each run writes into a new temporary folder, printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD"  # this checkout's gan/, for the benchmark too (an installed one could differ)
if [ -d .gpu_carry/whl ]; then  # packed by benchmarks/gpu_carry.sh: what the lent machine lacks
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu_carry/whl/*.whl
  export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
data_root="${1:-data}"
work=$(mktemp -d)
echo "outputs: $work"

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python -c "import torch, pytorch_lightning as pl; print('torch', torch.__version__, '| lightning', pl.__version__)"
python -m pytest -q -p no:cacheprovider tests/test_data.py::test_on_device_cuts_the_batches_on_the_gpu \
  tests/test_train.py -k "on_the_gpu or gpu_batches"
python benchmarks/train_speed.py --batches-mlp 917 --batches-conv 917 -- hardware=gpu "data.root=$data_root"
python benchmarks/train_speed.py --batches-mlp 917 --batches-conv 917 -- hardware=gpu model.fused_adam=true \
  "data.root=$data_root"

TIMEFORMAT="%R s: python train.py model=conv hardware=gpu trainer.max_epochs=15"
time python train.py model=conv hardware=gpu trainer.max_epochs=15 "data.root=$data_root" \
  "hydra.run.dir=$work/conv15" >"$work/conv15.log" 2>&1
tail -n 2 "$work/conv15/metrics.csv"
