"""``cond_vae.toml``: the project's one TOML writer/reader (configs and tools' run records)."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import pytest
from cond_vae import toml
from hypothesis import given
from hypothesis import strategies as st


def _run_record_like() -> dict:
    """What a tool's ``run.toml`` holds: every kind of value ``_run_record.dumps_toml`` writes."""
    return {
        "run": {
            "command": "train",
            "argv": ["xtal", "train", "--out", "runs/a b"],
            "status": "completed",
            "started": "2024-01-01T00:00:00+00:00",
            "finished": None,
            "error": None,
            "seed": 42,
            "host": "node-1",
        },
        "git": {"commit": "abc123", "dirty": False},
        "versions": {"cond-vae": "0.1.0", "xtal-tools": "not installed", "python": "3.12.1"},
        "summary": {"steps": 1000, "best_val": float("nan"), "lr_floor": float("inf"), "low": -math.inf},
        "config": {
            "out_dir": Path("runs/tiny"),
            "train": {"lr": 1e-4, "max_steps": None, "devices": ("cpu", None), "layers": [[1, 2], [3]]},
            "sampler": {"kind": "ode", "steps": 50, "tweedie": True},
            "conditions": [
                {"formula": "Si4O8", "pressure": 10.0, "note": None},
                {"formula": "C8", "pressure": 0},
            ],
            "weird key": {"a.b": 'quote "me"\n\ttab\\'},
            "empty": {},
        },
    }


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return (
            isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
        )
    return a == b and type(a) is type(b)


def test_run_record_values_round_trip_with_none_left_out():
    data = _run_record_like()
    back = tomllib.loads(toml.dumps(data))
    assert "finished" not in back["run"] and "error" not in back["run"]
    assert back["config"]["out_dir"] == "runs/tiny"
    assert back["config"]["train"]["devices"] == ["cpu"]
    assert "max_steps" not in back["config"]["train"]
    assert back["config"]["conditions"] == [
        {"formula": "Si4O8", "pressure": 10.0},
        {"formula": "C8", "pressure": 0},
    ]
    assert back["config"]["weird key"] == {"a.b": 'quote "me"\n\ttab\\'}
    assert back["config"]["empty"] == {}
    assert math.isnan(back["summary"]["best_val"])
    assert back["summary"]["lr_floor"] == math.inf and back["summary"]["low"] == -math.inf


def test_none_is_left_out_everywhere():
    data = {"a": None, "t": {"b": None, "c": 1}, "l": [None, 1, None], "i": [{"x": None, "y": [None]}]}
    assert tomllib.loads(toml.dumps(data)) == {"t": {"c": 1}, "l": [1], "i": [{"y": []}]}


def test_unsupported_values_raise_naming_the_type():
    with pytest.raises(TypeError, match="cannot write object"):
        toml.dumps({"a": object()})


_scalar = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=8),
)
_key = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=6)
_values = st.recursive(
    _scalar | st.none(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_key, inner, max_size=3),
    max_leaves=12,
)


def _drop_none(value):
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value if v is not None]
    return value


@given(st.dictionaries(_key, _values, max_size=4))
def test_round_trip_of_any_nested_document(data):
    assert _same(_drop_none(data), tomllib.loads(toml.dumps(data)))


def test_read_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="config file not found"):
        toml.read(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("a = [")
    with pytest.raises(ValueError, match="bad.toml: invalid TOML"):
        toml.read(bad)
