"""Damaged stores (issue 17): checksummed chunks, read-back checks and ``xtal-data verify`` name the damaged
chunk or record, exit 1, and never write an export from damaged data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner
from xtal_data import CrystalStore, StoreConfig
from xtal_data.cli import app
from xtal_data.integrity import CorruptStoreError

from tests.xtal_data._helpers import rock_salt, simple_cubic

pytestmark = pytest.mark.torch_free
runner = CliRunner()


def _store(tmp_path, config: StoreConfig | None = None) -> str:
    url = str(tmp_path / "s.zarr")
    store = CrystalStore.create(url, config=config or StoreConfig())
    store.append([rock_salt("nacl"), simple_cubic("c1", 3.0)])
    return url


def _damage(path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncate":
        data = data[: len(data) // 3]
    else:  # flip a few bytes in the middle of the chunk
        for k in range(len(data) // 2, len(data) // 2 + 3):
            data[k] ^= 0x5A
    path.write_bytes(bytes(data))


def test_new_stores_checksum_every_chunk(tmp_path):
    url = _store(tmp_path)
    assert CrystalStore.open(url).config.checksum
    codecs = json.loads((tmp_path / "s.zarr" / "lattice" / "zarr.json").read_text())["codecs"]
    assert codecs[-1]["name"] == "crc32c"


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_damaged_chunk_is_named_by_readers_export_and_verify(tmp_path, how):
    url = _store(tmp_path)
    _damage(tmp_path / "s.zarr" / "lattice" / "c" / "0" / "0" / "0", how)
    with pytest.raises(CorruptStoreError, match=r"s\.zarr: cannot read lattice rows 0\.\.1 \(CRC-32C"):
        CrystalStore.open(url).read()
    out = tmp_path / "cifs"
    result = runner.invoke(app, ["export", url, str(out)])
    assert result.exit_code == 1 and "cannot read lattice" in result.output
    assert "Traceback" not in result.output and len(result.output.splitlines()) == 1
    assert not out.exists()  # nothing half-written
    result = runner.invoke(app, ["info", url])
    assert result.exit_code == 1 and "cannot read lattice" in result.output
    result = runner.invoke(app, ["verify", url])
    assert result.exit_code == 1
    assert "lattice/c/0/0/0 (rows 0..1, structures 0..1, ids 'nacl'..'c1')" in result.output
    assert "checksum mismatch" in result.output and "1 problems" in result.output


def test_damaged_atoms_chunk_names_the_structures_owning_it(tmp_path):
    url = _store(tmp_path)
    _damage(tmp_path / "s.zarr" / "atoms" / "frac_coords" / "c" / "0" / "0", "flip")
    result = runner.invoke(app, ["verify", url])
    assert result.exit_code == 1 and "atoms/frac_coords/c/0/0" in result.output
    assert "atoms of structures 0..1, ids 'nacl'..'c1'" in result.output


def _old_store(tmp_path) -> str:
    """A store as xtal-data wrote it before checksums: no crc32c codec, no 'checksum' config key."""
    url = _store(tmp_path, StoreConfig(checksum=False))
    store = CrystalStore.open(url, mode="r+")
    config = {k: v for k, v in store.attributes["config"].items() if k != "checksum"}
    store._write_meta(config=config)
    return url


def test_stores_without_checksums_stay_readable(tmp_path):
    url = _old_store(tmp_path)
    store = CrystalStore.open(url)
    assert not store.config.checksum and store.ids.tolist() == ["nacl", "c1"]
    result = runner.invoke(app, ["verify", url])
    assert result.exit_code == 0 and "without checksums" in result.output and "ok:" in result.output
    store = CrystalStore.open(url, mode="r+")
    store.append([rock_salt("later")])  # appending keeps the store's own codecs
    assert CrystalStore.open(url).read().ids.tolist() == ["nacl", "c1", "later"]


@pytest.mark.parametrize(
    "value, message",
    [(np.inf, "non-finite lattice"), (1e300, "absurd lattice"), (0.0, "zero or degenerate cell volume")],
)
def test_impossible_lattice_read_back_is_an_error_never_a_cif(tmp_path, value, message):
    """Bytes changed in a store without checksums decode to wrong numbers: they must not reach a CIF."""
    url = _old_store(tmp_path)
    group = CrystalStore.open(url, mode="r+")._group
    lattice = group["lattice"][:]
    lattice[1, 0, 0] = value
    if value == 0.0:
        lattice[1, 0] = 0.0
    group["lattice"][:] = lattice
    with pytest.raises(CorruptStoreError, match=rf"structure 1 \('c1'\) has an? {message}"):
        CrystalStore.open(url).read()
    with pytest.raises(CorruptStoreError, match="'c1'"):
        CrystalStore.open(url)[1]
    out = tmp_path / "cifs"
    result = runner.invoke(app, ["export", url, str(out)])
    assert result.exit_code == 1 and "structure 1 ('c1')" in result.output and not out.exists()
    result = runner.invoke(app, ["export", url, str(tmp_path / "x.extxyz"), "--format", "extxyz"])
    assert result.exit_code == 1 and not (tmp_path / "x.extxyz").exists()
    result = runner.invoke(app, ["verify", url])
    assert result.exit_code == 1 and "structure 1 ('c1') has a" in result.output and message in result.output


def test_broken_atom_index_is_named(tmp_path):
    url = _old_store(tmp_path)
    group = CrystalStore.open(url, mode="r+")._group
    group["num_atoms"][1] = 10**6
    with pytest.raises(CorruptStoreError, match="structure 1 has 1000000 atoms at offset 8 of 9"):
        CrystalStore.open(url).read()
    result = runner.invoke(app, ["verify", url])
    assert result.exit_code == 1 and "structure 1 has 1000000 atoms" in result.output


def test_unreadable_metadata_is_named(tmp_path):
    url = _store(tmp_path)
    (tmp_path / "s.zarr" / "zarr.json").write_text("{ not json")
    result = runner.invoke(app, ["info", url])
    assert result.exit_code == 1 and "s.zarr" in result.output and "Traceback" not in result.output


def test_truncated_chunk_without_checksum_is_named_not_a_traceback(tmp_path):
    url = _old_store(tmp_path)
    _damage(tmp_path / "s.zarr" / "lattice" / "c" / "0" / "0" / "0", "truncate")
    with pytest.raises(CorruptStoreError, match=r"cannot read lattice rows 0\.\.1 \(RuntimeError: .*blosc"):
        CrystalStore.open(url).read()
    result = runner.invoke(app, ["export", url, str(tmp_path / "cifs")])
    assert result.exit_code == 1 and len(result.output.splitlines()) == 1 and not (tmp_path / "cifs").exists()
    result = runner.invoke(app, ["verify", url])
    assert result.exit_code == 1 and "lattice/c/0/0/0 (rows 0..1" in result.output
