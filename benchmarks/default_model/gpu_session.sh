#!/usr/bin/env bash
# One lent-GPU session (device `run`), from the project root, carrying .whl/ (../shared/device/wheelhouse.sh),
# .shared/ (a copy of ../shared/data) and runs/default/all.zarr (the seed-0 store): the CUDA tests and a
# leg of the default model's training relay side by side, then everything packed into $OUT.
#   bash benchmarks/default_model/gpu_session.sh RELAY_MINUTES
set -u
export PYTHONUNBUFFERED=1 HYPOTHESIS_PROFILE=ci
minutes="${1:-5}"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  $(ls .whl/*.whl | grep -v -E '/(xtal_graph|score_decoder|cond_vae|xtal_eval|xtal_data|xtal_tools)-') \
  > "$OUT/pip.log" 2>&1 || { tail -20 "$OUT/pip.log"; exit 1; }
src=$(printf '%s:' "$PWD"/packages/*/src)
export PYTHONPATH="/tmp/site:${src}$PWD/tools/src:$PWD" XTAL_SHARED_DATA=$PWD/.shared/data
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.txt"
( python3 -m pytest tests -m cuda -q -p no:cacheprovider --timeout 120 -rfEs > "$OUT/cuda-tests.log" 2>&1;
  echo "pytest rc $?" >> "$OUT/cuda-tests.log" ) &
tests=$!
( nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -l 5 > "$OUT/gpu-util.csv" ) &
smi=$!
bash benchmarks/default_model/relay.sh "$minutes" /tmp/relay --device cuda > "$OUT/relay.log" 2>&1
echo "relay rc $?" >> "$OUT/relay.log"
wait $tests; kill $smi 2>/dev/null
tail -4 "$OUT/cuda-tests.log"; tail -4 "$OUT/relay.log"
# at most 16 MiB a file comes back: the resumable checkpoint (about 14 MB) apart from the rest
tar -C benchmarks/default_model/relay -cf "$OUT/relay-checkpoint.tar" checkpoint
tar -C benchmarks/default_model/relay -cf "$OUT/relay-rest.tar" --exclude checkpoint .
ls -la "$OUT"
