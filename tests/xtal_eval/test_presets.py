import pytest
from xtal_eval.presets import PRESETS, MatcherPreset, resolve_presets

pytestmark = pytest.mark.torch_free


def test_preset_values_are_the_documented_ones():
    got = {name: (p.ltol, p.stol, p.angle_tol) for name, p in PRESETS.items()}
    assert got == {"cdvae": (0.3, 0.5, 10.0), "paper": (0.2, 0.3, 5.0), "strict": (0.1, 0.2, 5.0)}
    m = PRESETS["cdvae"].matcher()
    assert (m.ltol, m.stol, m.angle_tol, m._primitive_cell, m._scale, m._supercell) == (
        0.3,
        0.5,
        10.0,
        True,
        True,
        False,
    )


def test_resolve_presets_accepts_names_lists_and_objects():
    assert [p.name for p in resolve_presets("cdvae,paper")] == ["cdvae", "paper"]
    custom = MatcherPreset(name="mine", ltol=0.25, stol=0.4, angle_tol=7)
    assert resolve_presets(["strict", custom])[1] is custom


@pytest.mark.parametrize("bad", ["loose", "", [], ["cdvae", "cdvae"]])
def test_resolve_presets_rejects_unknown_empty_and_duplicates(bad):
    with pytest.raises(ValueError):
        resolve_presets(bad)


def test_preset_rejects_non_positive_tolerances():
    with pytest.raises(ValueError, match="stol"):
        MatcherPreset(name="x", ltol=0.2, stol=0.0, angle_tol=5)


def test_site_count_filter_is_off_with_supercells():
    assert PRESETS["cdvae"].site_count_filter_is_exact
    assert not MatcherPreset(
        name="sc", ltol=0.2, stol=0.3, angle_tol=5, attempt_supercell=True
    ).site_count_filter_is_exact
