#!/usr/bin/env bash
# One lent-GPU run (device `run`, from the project root, carrying .whl/, .shared/ and runs/default/all.zarr):
# the sampler curve of the shipped model and the candidate settings for a second checkpoint (CANDIDATE,
# e.g. a relay leg's best; default: the shipped model again), side by side on one GPU (matching in CPU
# processes meanwhile), and the CUDA tests. Results into $OUT.
#   bash benchmarks/cond_vae/gpu_sampler_curve.sh BUDGET_S [CANDIDATE]
set -u
export PYTHONUNBUFFERED=1 HYPOTHESIS_PROFILE=ci OMP_NUM_THREADS=1
budget="${1:-230}"
candidate="${2:-tools/src/xtal_tools/models/default}"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  $(ls .whl/*.whl | grep -v -E '/(xtal_graph|score_decoder|cond_vae|xtal_eval|xtal_data|xtal_tools)-') \
  > /tmp/pip.log 2>&1 || { tail -20 /tmp/pip.log; exit 1; }
src=$(printf '%s:' "$PWD"/packages/*/src)
export PYTHONPATH="/tmp/site:${src}$PWD/tools/src:$PWD" XTAL_SHARED_DATA=$PWD/.shared/data
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } > "$OUT/gpu.txt"
( python3 -m pytest tests -m cuda -q -p no:cacheprovider --timeout 120 -rfEs --continue-on-collection-errors > "$OUT/cuda-tests.log" 2>&1;
  echo "pytest rc $?" >> "$OUT/cuda-tests.log" ) &
bench=benchmarks/cond_vae/bench_sampler_curve.py
common="--data runs/default/all.zarr --per-dataset 15 --num 20 --device cuda --jobs 7"
python3 $bench --checkpoint tools/src/xtal_tools/models/default $common --budget-s "$budget" \
  --out "$OUT/shipped" > "$OUT/shipped.log" 2>&1 &
shipped=$!
python3 $bench --checkpoint "$candidate" $common --grid candidates \
  --reference-per-dataset 0 --budget-s $((budget - 40)) --out "$OUT/relay" > "$OUT/relay.log" 2>&1
wait $shipped
wait
tail -3 "$OUT/cuda-tests.log"; grep -v Warning "$OUT/shipped.log" | tail -25; tail -8 "$OUT/relay.log"
