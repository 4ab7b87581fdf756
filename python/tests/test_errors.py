"""Errors: KeyError, IndexError/ValueError, FileNotFoundError and TstoreError (an OSError with
the library's code and message); a damaged page fails only the reads that need it."""

import shutil

import numpy as np
import pytest

import tstore
import tstore.numpy
from conftest import run


@pytest.fixture
def store(tmp_path):
    p = tmp_path / "s.tst"
    tstore.numpy.save_file({"a": np.arange(100_000, dtype=np.int32).reshape(1000, 100),
                            "b": np.full((50, 60), 7, dtype=np.int16)}, p)
    return p


def test_missing_names_raise_keyerror(store):
    with tstore.safe_open(store, "np") as f:
        for call in (f.get_tensor, f.get_slice, f.store.info):
            with pytest.raises(KeyError):
                call("nope")
        assert "a" in f.store and "nope" not in f.store


def test_missing_store_and_not_a_store(tmp_path):
    with pytest.raises(FileNotFoundError):
        tstore.safe_open(tmp_path / "absent.tst", "np")
    junk = tmp_path / "junk.tst"
    junk.write_bytes(b"not a store at all" * 1000)
    with pytest.raises(tstore.TstoreError) as e:
        tstore.safe_open(junk, "np")
    assert isinstance(e.value, OSError)
    assert e.value.errname == "TS_ECORRUPT" and e.value.code == -5
    assert "junk.tst" in e.value.detail


def test_bad_framework_closed_handle_and_readonly(store):
    with pytest.raises(ValueError):
        tstore.safe_open(store, "tf")
    f = tstore.safe_open(store, "np")
    f.close()
    with pytest.raises(ValueError, match="closed"):
        f.get_tensor("a")
    with tstore.open(store) as st:
        with pytest.raises(tstore.TstoreError) as e:
            st.write("c", np.zeros(3, np.float32))
        assert e.value.errname == "TS_EREADONLY"


def test_damaged_page_fails_only_its_reads(store, tmp_path, cli):
    bad = tmp_path / "bad.tst"
    shutil.copy(store, bad)
    data = bytearray(bad.read_bytes())
    needle = np.arange(1000, 1004, dtype=np.int32).tobytes()  # rows 10.. of 'a', page 0
    at = data.find(needle)
    assert at > 0 and data.find(needle, at + 1) < 0
    data[at + 1] ^= 0x40
    bad.write_bytes(bytes(data))
    with tstore.safe_open(bad, "np") as f:
        with pytest.raises(tstore.TstoreError) as e:
            f.get_tensor("a")
        assert e.value.errname == "TS_ECORRUPT"
        assert "'a'" in str(e.value) and "page 0" in str(e.value)
        with pytest.raises(tstore.TstoreError):
            f.get_slice("a")[10:12]
        # the other pages of 'a' and the other tensor read as before
        assert np.array_equal(f.get_slice("a")[900:], np.arange(90_000, 100_000).reshape(100, 100))
        assert np.array_equal(f.get_tensor("b"), np.full((50, 60), 7, np.int16))
    assert run(cli, "fsck", bad, check=False).returncode == 1


def test_save_file_rejects_bad_input_before_creating_anything(tmp_path):
    p = tmp_path / "new.tst"
    x = np.zeros((4, 4), np.float32)
    cases = [
        (TypeError, lambda: tstore.numpy.save_file([x], p)),
        (TypeError, lambda: tstore.numpy.save_file({"x": [1, 2]}, p)),
        (ValueError, lambda: tstore.numpy.save_file({"": x}, p)),
        (ValueError, lambda: tstore.numpy.save_file({"x": x.astype(np.complex64)}, p)),
        (ValueError, lambda: tstore.numpy.save_file({"x": x}, p, metadata={"a": 1})),
        (ValueError, lambda: tstore.numpy.save_file({"x": x}, p, codec="zip")),
        (ValueError, lambda: tstore.numpy.save_file({"x": x}, p, max_error=-1)),
        (ValueError, lambda: tstore.numpy.save_file({"x": x}, p, max_error=101)),
    ]
    for exc, call in cases:
        with pytest.raises(exc):
            call()
        assert not p.exists()
