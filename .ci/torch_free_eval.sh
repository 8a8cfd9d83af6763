#!/usr/bin/env bash
# Install xtal-eval (and xtal-data's core) alone into a fresh venv, assert torch is absent, and run
# the torch-free tests there. Called by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(mktemp -d)/venv
python -m venv "$venv"
# The coverage extra (matminer) brings pandas < 3 here: xtal-data is thereby also tested on pandas 2.
# No `baselines` extra: xtal_eval.baselines runs on the ASE that smact brings, and its PyXtal tests skip
# (xtal-data now depends on xtal-eval, so the local xtal-eval is installed in the same command).
"$venv/bin/python" -m pip install -q "./packages/xtal_eval[smact,cli,plot,coverage,test]" "./packages/xtal_data[test]"
"$venv/bin/python" - <<'PY'
import importlib.util, sys
assert importlib.util.find_spec("torch") is None, "torch leaked into the torch-free venv"
import xtal_eval, xtal_data  # noqa: F401
print(f"torch-free venv OK: xtal-eval {xtal_eval.__version__}, xtal-data {xtal_data.__version__}")
PY
# Tests marked `torch_free` must pass without torch; everything else is run by the main suite.
"$venv/bin/python" -m pytest -q -m torch_free tests/xtal_eval tests/xtal_data tests/examples -p no:cacheprovider || {
  rc=$?; [ "$rc" -eq 5 ] && echo "no torch-free tests collected" || exit "$rc"; }
