#!/usr/bin/env bash
# Reproduce the shipped default model from a checkout (see tools/src/xtal_tools/models/default/MODEL_CARD.md).
#   bash benchmarks/default_model/train_default.sh [WORKDIR]      (re-run to resume: training restarts
#   from the newest checkpoint in WORKDIR/run)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
data="${XTAL_SHARED_DATA:-$root/../shared/data}"
work="${1:-$root/runs/default}"
mkdir -p "$work"
store="$work/all.zarr"
if [ ! -d "$store" ]; then
  xtal-data ingest "$data/mp_20/val.feather" "$store" --no-progress          # 9,047 at 0 GPa (column)
  xtal-data ingest "$data/perov_5/val.csv" "$store" --pressure 0 --no-progress   # 3,787
  xtal-data ingest "$data/carbon_24/val.csv" "$store" --pressure 10 --no-progress  # 2,032 at 10 GPa
  xtal-data split "$store" --seed 0                                           # 11,893 / 1,486 / 1,487
fi
"$root/tools/train" --config "$root/configs/default.toml" --data "$store" --out "$work/run" --resume auto \
  --no-progress "${@:2}"
