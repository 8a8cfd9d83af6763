#!/usr/bin/env bash
# One lent-GPU session (device `run`), from the project root, carrying .whl/ (../shared/device/wheelhouse.sh
# without the project's own wheels: the sources are used), .shared/ (a copy of ../shared/data) and
# runs/default/all.zarr (the seed-0 store; relay.sh builds the pressure store from it). In order:
#   1. benchmarks/cond_vae/gpu_speed.py: sampling and training-step speed, every variant side by side;
#   2. the CUDA test set (pytest -m cuda), alongside
#   3. a relay leg through tools/train on the GPU, interrupted by SIGINT after INTERRUPT_S seconds and
#      resumed for RESUME_MIN minutes, with the GPU's utilisation sampled every second.
# Everything comes back in $OUT (at most 8 files).
# The travelling tree must stay under 64 MiB: tracked files 30 MB + .whl 19 MB + .shared 9 MB + the store
# 3 MB = 58 MiB on 2026-12-05 (du -sh them before a run).
#   bash benchmarks/default_model/gpu_session.sh [INTERRUPT_S] [RESUME_MIN] [SPEED_TIMEOUT_S]
set -u
export PYTHONUNBUFFERED=1 HYPOTHESIS_PROFILE=ci OMP_NUM_THREADS=1
interrupt_s="${1:-60}"
resume_min="${2:-1.5}"
speed_timeout="${3:-270}"
log="$OUT/session.log"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .whl/*.whl > /tmp/pip.log 2>&1 || { tail -20 /tmp/pip.log; exit 1; }
src=$(printf '%s:' "$PWD"/packages/*/src)
export PYTHONPATH="/tmp/site:${src}$PWD/tools/src:$PWD" XTAL_SHARED_DATA=$PWD/.shared/data
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; nproc; } > "$log" 2>&1
( nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -l 1 > "$OUT/gpu-util.csv" ) &
smi=$!

echo "== speed $(date -u +%T)" >> "$log"
timeout "$speed_timeout" python3 benchmarks/cond_vae/gpu_speed.py --data runs/default/all.zarr --device cuda \
  --out "$OUT" >> "$log" 2>&1
echo "speed rc $? $(date -u +%T)" >> "$log"

echo "== cuda tests + relay $(date -u +%T)" >> "$log"
( python3 -m pytest tests -m cuda -q -p no:cacheprovider --timeout 240 -rfEs > "$OUT/cuda-tests.log" 2>&1
  echo "pytest rc $? $(date -u +%T)" >> "$OUT/cuda-tests.log" ) &
tests=$!
relay=benchmarks/default_model/relay.sh
bash $relay 30 /tmp/relay --device cuda >> "$log" 2>&1 &
leg=$!
sleep "$interrupt_s"
main=$(pgrep -o -f "tools/train --config")  # the oldest: the trainer, not its data-loader workers
kill -INT "$main" && echo "SIGINT sent to $main $(date -u +%T)" >> "$log"
wait $leg; echo "relay (interrupted) rc $? $(date -u +%T)" >> "$log"
bash $relay "$resume_min" /tmp/relay --device cuda >> "$log" 2>&1
echo "relay (resumed) rc $? $(date -u +%T)" >> "$log"
wait $tests; kill $smi 2>/dev/null
tail -3 "$OUT/cuda-tests.log"; grep -E "rc |SIGINT|relay state|stopped|step" "$log" | tail -12
tar -C benchmarks/default_model/relay -cf "$OUT/relay.tar" .
ls -la "$OUT"
