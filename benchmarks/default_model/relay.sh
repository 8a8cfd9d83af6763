#!/usr/bin/env bash
# One leg of the default model's training relay (see relay.toml): resume the committed state, train for
# MINUTES, put the new state in place of the old one.
#   bash benchmarks/default_model/relay.sh MINUTES [WORKDIR] [extra tools/train flags, e.g. --device cuda]
# State (committed, replaced by each leg, safetensors + JSON only): benchmarks/default_model/relay/
#   checkpoint/   the newest resumable step checkpoint (weights, Adam moments, RNG, loop position)
#   best/         the lowest-validation-loss weights so far (model-only)
#   metrics.csv   the whole learning curve; config.toml the resolved configuration of the last leg
# The first leg (no state yet) warm-starts from the shipped model tools/src/xtal_tools/models/default.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
minutes="${1:?usage: relay.sh MINUTES [WORKDIR] [tools/train flags]}"
work="${2:-$root/runs/relay}"
state="$root/benchmarks/default_model/relay"
store="$root/runs/default/all.zarr"
[ -d "$store" ] || bash "$root/benchmarks/default_model/train_default.sh" "$root/runs/default" --max-steps 1 >/dev/null
mkdir -p "$work/checkpoints"
if [ -d "$state/checkpoint" ] && [ -z "$(ls -A "$work/checkpoints")" ]; then
  step=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['loop']['step'])" "$state/checkpoint/train_state.json")
  cp -r "$state/checkpoint" "$work/checkpoints/$(printf 'step_%08d' "$step")"
  cp "$state/metrics.csv" "$work/metrics.csv"
  [ -d "$state/best" ] && cp -r "$state/best" "$work/best"
fi
"$root/tools/train" --config "$root/benchmarks/default_model/relay.toml" --data "$store" --out "$work" \
  --resume auto --init-from "$root/tools/src/xtal_tools/models/default" --max-minutes "$minutes" \
  --no-progress "${@:3}"
newest=$(ls -d "$work"/checkpoints/step_* | sort | tail -1)
rm -rf "$state.new" && mkdir -p "$state.new"
cp -r "$newest" "$state.new/checkpoint"
[ -d "$work/best" ] && cp -r "$work/best" "$state.new/best"
cp "$work/metrics.csv" "$work/config.toml" "$state.new/"
rm -rf "$state" && mv "$state.new" "$state"
echo "relay state: $state (from $newest)"
