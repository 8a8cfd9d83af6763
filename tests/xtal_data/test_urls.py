"""Stores and sources behind URLs: a store read over HTTP, a table ingested from memory:// and HTTP, and
the round-trip check failing on a deliberately broken store."""

from __future__ import annotations

import csv
import functools
import http.server
import io
import threading

import fsspec
import numpy as np
import pytest
from xtal_data import CrystalStore, ingest
from xtal_data import store as store_module

from tests.xtal_data._helpers import CIF_NACL, rock_salt, simple_cubic

pytestmark = pytest.mark.torch_free


@pytest.fixture()
def http_root(tmp_path):
    """Serve ``tmp_path`` read-only over HTTP on localhost; yields (folder, base URL)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _csv_text(n: int) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["", "material_id", "cif", "energy"])
    writer.writerows([i, f"m{i}", CIF_NACL, -float(i)] for i in range(n))
    return buffer.getvalue()


def test_store_reads_over_http_with_the_same_code(http_root):
    pytest.importorskip("aiohttp")
    folder, base = http_root
    local = CrystalStore.create(str(folder / "s.zarr"))
    local.append([rock_salt("a", energy=-1.0), simple_cubic("b", 3.0, pressure=2.0)])
    remote = CrystalStore.open(f"{base}/s.zarr")
    assert len(remote) == 2 and remote.ids.tolist() == ["a", "b"]
    np.testing.assert_array_equal(remote.read().frac_coords, local.read().frac_coords)
    assert remote[1].pressure == 2.0 and remote.get_property("energy")[0] == -1.0
    (folder / "t.csv").write_text(_csv_text(3))
    report = ingest(f"{base}/t.csv", "memory://url-tests/from-http", pressure=0.0, workers=1, progress=False)
    assert report.written == 3


def test_ingest_a_table_from_memory_url():
    with fsspec.open("memory://url-tests/src/table.csv", "w") as fh:
        fh.write(_csv_text(4))
    report = ingest("memory://url-tests/src/table.csv", "memory://url-tests/dst", pressure=0.0, workers=1,
                    progress=False)  # fmt: skip
    assert report.written == 4
    assert CrystalStore.open("memory://url-tests/dst").get_property("energy").tolist() == [
        0.0,
        -1.0,
        -2.0,
        -3.0,
    ]


def test_round_trip_check_fails_on_a_deliberately_broken_store(monkeypatch):
    """The exactness test must catch a store that silently narrows coordinates to float32."""
    from tests.xtal_data.test_store import assert_tables_equal

    rec = rock_salt("x")
    rec = type(rec)("x", rec.atomic_numbers, rec.frac_coords + 1e-9, rec.lattice, 0.0)
    monkeypatch.setitem(store_module.DISK_DTYPE, "atoms/frac_coords", np.float32)
    broken = CrystalStore.create("memory://url-tests/broken")
    broken.append([rec])
    from xtal_data import CrystalArrays

    with pytest.raises(AssertionError):
        assert_tables_equal(CrystalArrays.from_records([rec]), broken.read())
