#!/usr/bin/env bash
# The GPU measurements that decide issue 5, in one call: the wall time of the lab's 15-epoch conv run, the CUDA-only
# tests, the benchmark with hardware=gpu, and the same run without CUDA graphs to compare (the README's "On a GPU").
#
#     bash benchmarks/gpu_check.sh [DATA_ROOT [OUTPUT_FOLDER]]    # DATA_ROOT: data.root, default data/
#
# On the lent GPU machine (no Hydra, no internet): bash benchmarks/gpu_carry.sh here first, then carry .gpu_carry
# and pass .gpu_carry/data as DATA_ROOT. Each step has a time limit and the steps go on after a failure, so one call
# of under 10 minutes brings back every number there is; the runs' logs stay in OUTPUT_FOLDER (default: a new
# temporary folder).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD"  # this checkout's gan/, for the benchmark too (an installed one could differ)
if [ -d .gpu_carry/whl ]; then  # packed by benchmarks/gpu_carry.sh: what the lent machine lacks
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu_carry/whl/*.whl
  export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
data_root="${1:-data}"
work="${2:-$(mktemp -d)}"
mkdir -p "$work"
echo "outputs: $work"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python -c "import torch, pytorch_lightning as pl; print('torch', torch.__version__, '| lightning', pl.__version__)"

# timed LIMIT NAME ARGS...: `python train.py ARGS` into $work/NAME, its wall time, and its last epochs' speed
timed() {
  local limit=$1 name=$2 start
  shift 2
  start=$(date +%s.%N)
  timeout "$limit" python train.py "data.root=$data_root" "hydra.run.dir=$work/$name" "$@" >"$work/$name.log" 2>&1
  echo "$name (exit $?): $(python -c "print(f'{$(date +%s.%N) - $start:.1f}')") s: python train.py $*"
  grep -o -E "Epoch [0-9]+: 100%[^[]*\[[^,]*, [0-9.]+it/s" "$work/$name.log" | awk -F: '!seen[$1]++' | tail -n 3
  grep -i -E "warn|error" "$work/$name.log" | grep -v -i "deprecat" | head -n 5
  tail -n 2 "$work/$name/metrics.csv" 2>/dev/null
}

timed 150 conv15 model=conv hardware=gpu trainer.max_epochs=15
timeout 100 python -m pytest -q -p no:cacheprovider --tb=short tests/test_data.py::test_on_device_cuts_the_batches_on_the_gpu \
  tests/test_train.py -k "on_the_gpu or gpu_batches or cuda_graph" >"$work/pytest.log" 2>&1
grep -E "^E |^FAILED|passed|failed" "$work/pytest.log" | head -n 40
timeout 100 python benchmarks/train_speed.py --batches-mlp 400 --batches-conv 400 -- hardware=gpu \
  "data.root=$data_root" 2>&1 | grep -v -E "it/s|^\s*$" | tail -n 25
timed 240 conv15_eager model=conv hardware=gpu trainer.max_epochs=15 model.cuda_graph=false
