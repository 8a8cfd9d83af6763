#!/usr/bin/env bash
# One leg of the default model's training relay: resume the committed state, train for MINUTES, put the
# new state in place of the old one.
#   bash benchmarks/default_model/relay.sh MINUTES [WORKDIR] [extra tools/train flags, e.g. --device cuda]
# Phase 2d (now): relay_phase2d.toml (phase 2c's, with every crystal in its Niggli-reduced cell) on
# runs/default/all_pressure_x4.zarr (the shared sets + the CHGNet pressure set 4x, built here when
# missing); phase 2c was relay_phase2c.toml (the predicted cell detached from the coordinate loss), phase 2b
# relay_pressure_raw.toml, phase 2 relay_pressure.toml on all_pressure.zarr, phase 1 relay.toml on all.zarr
# (RELAY_CONFIG / RELAY_STORE choose another). State (committed, replaced by each leg, safetensors + JSON
# only):
# benchmarks/default_model/relay/
#   checkpoint/          the newest resumable step checkpoint of the current phase (weights, Adam, RNG, loop)
#   metrics_phase2d.csv  the current phase's learning curve (metrics.csv, metrics_phase2*.csv: earlier ones)
#   config.toml          the resolved configuration of the last leg (config_phase1.toml: phase 1's)
# The relay's best model is the shipped one (tools/src/xtal_tools/models/default, the warm start of a new
# phase); a leg's own best lands in WORKDIR/best: evaluate it (model_card_eval.py) before shipping it.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
minutes="${1:?usage: relay.sh MINUTES [WORKDIR] [tools/train flags]}"
work="${2:-$root/runs/relay}"
state="$root/benchmarks/default_model/relay"
config="${RELAY_CONFIG:-$root/benchmarks/default_model/relay_phase2d.toml}"
store="${RELAY_STORE:-$root/runs/default/all_pressure_x4.zarr}"
base="$root/runs/default/all.zarr"
[ -d "$base" ] || bash "$root/benchmarks/default_model/train_default.sh" "$root/runs/default" --max-steps 1 >/dev/null
[ -d "$store" ] || python3 "$root/benchmarks/default_model/pressure_store.py" "$base" \
  "$root/data/pressure/chgnet_mp20_small_6p.zarr" "$store" --max-pressure 50 --repeat 4
mkdir -p "$work/checkpoints"
if [ -d "$state/checkpoint" ] && [ -z "$(ls -A "$work/checkpoints")" ]; then
  step=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['loop']['step'])" "$state/checkpoint/train_state.json")
  cp -r "$state/checkpoint" "$work/checkpoints/$(printf 'step_%08d' "$step")"
  cp "$state/metrics_phase2d.csv" "$work/metrics.csv"
fi
"$root/tools/train" --config "$config" --data "$store" --out "$work" \
  --resume auto --init-from "$root/tools/src/xtal_tools/models/default" --max-minutes "$minutes" \
  --no-progress "${@:3}"
newest=$(ls -d "$work"/checkpoints/step_* | sort | tail -1)
rm -rf "$state.new" && mkdir -p "$state.new"
cp -r "$newest" "$state.new/checkpoint"
cp "$state"/metrics*.csv "$state/config_phase1.toml" "$state.new/"  # every earlier phase's curve
cp "$work/metrics.csv" "$state.new/metrics_phase2d.csv"
cp "$work/config.toml" "$state.new/config.toml"
rm -rf "$state" && mv "$state.new" "$state"
echo "relay state: $state (from $newest)"
