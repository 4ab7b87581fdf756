"""Writing: tstore.open(path, "a") publishes a with-block's tensors together or not at all;
save_file interrupted leaves the store as it was; metadata travels in the same commit."""

import numpy as np
import pytest

import tstore
import tstore._store
import tstore.numpy
from conftest import read_safetensors, run


def _w(seed, shape=(40, 300)):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.fixture
def store(tmp_path):
    p = tmp_path / "s.tst"
    tstore.numpy.save_file({"old": np.arange(10, dtype=np.int64), "w": _w(1)}, p,
                           metadata={"v": "1"}, codec="raw")
    return p


def _state(p):
    with tstore.safe_open(p, "np") as f:
        return f.metadata(), {k: f.get_tensor(k).tobytes() for k in f.keys()}


def test_a_with_block_is_published_at_its_end(store):
    before = _state(store)
    with tstore.open(store, "a") as st:
        info = st.write("x", _w(2), codec="int8")
        st.write("w", _w(3), codec="raw")
        st.set_metadata({"v": "2"})
        assert info.codec == "int8" and info.shape == (40, 300)
        assert _state(store) == before  # another handle sees nothing yet
    meta, now = _state(store)
    assert meta == {"v": "2"} and sorted(now) == ["old", "w", "x"]
    assert now["w"] == _w(3).tobytes()


def test_an_exception_in_the_block_discards_everything(store, cli):
    before = _state(store)
    with pytest.raises(RuntimeError):
        with tstore.open(store, "a") as st:
            st.write("x", _w(2))
            st.write("w", _w(4))
            st.set_metadata({"v": "3"})
            raise RuntimeError("stop")
    assert _state(store) == before
    assert run(cli, "fsck", store).returncode == 0  # nothing left behind


def test_commit_then_more_writes(store):
    st = tstore.open(store, "a")
    st.write("a", np.ones(3, np.int8))
    assert st.commit() == 1
    st.write("b", np.ones(3, np.int8))
    st.abort()
    st.write("c", np.ones(3, np.int8))
    st.close()  # publishes "c"
    assert sorted(_state(store)[1]) == ["a", "c", "old", "w"]


@pytest.mark.parametrize("stop", ["nonfinite", "interrupt"])
def test_save_file_interrupted_leaves_the_store_as_it_was(store, tmp_path, monkeypatch, stop):
    before = _state(store)
    bad = _w(5)
    bad[0, 0] = np.nan
    tensors = {"a": _w(6), "old": np.zeros(10, np.int64), "w": _w(7), "z": bad}
    if stop == "interrupt":
        real = tstore._store._policy.source

        def source(t, name):
            if name == "w":  # the third tensor written (in name order)
                raise KeyboardInterrupt
            return real(t, name)
        monkeypatch.setattr(tstore._store._policy, "source", source)
        exc = KeyboardInterrupt
    else:
        exc = ValueError
    with pytest.raises(exc):
        tstore.numpy.save_file(tensors, store, metadata={"v": "9"}, codec="nvfp4")
    assert _state(store) == before
    fresh = tmp_path / "fresh.tst"
    with pytest.raises(exc):
        tstore.numpy.save_file(tensors, fresh, codec="nvfp4")
    assert not fresh.exists() and not (tmp_path / "fresh.tst-lock").exists()
    # an empty file holds no store either: a failed save_file leaves none behind
    fresh.write_bytes(b"")
    with pytest.raises(exc):
        tstore.numpy.save_file(tensors, fresh, codec="nvfp4")
    assert not fresh.exists() and not (tmp_path / "fresh.tst-lock").exists()


def test_save_file_replaces_names_and_keeps_the_others(store):
    tstore.numpy.save_file({"w": _w(8)}, store, codec="raw")
    meta, now = _state(store)
    assert meta == {"v": "1"} and sorted(now) == ["old", "w"]
    assert now["w"] == _w(8).tobytes()


def test_metadata_reaches_export(store, cli, tmp_path):
    tstore.numpy.save_file({"m": _w(9)}, store, metadata={"format": "pt", "é": "ü"})
    run(cli, "export", "-q", store, tmp_path / "o.safetensors")
    assert read_safetensors(tmp_path / "o.safetensors")[1] == {"format": "pt", "é": "ü"}
    with tstore.open(store, "a") as st:
        st.set_metadata(None)
    assert _state(store)[0] is None


def test_attachments_travel_with_the_group_and_delete_is_immediate(store, cli, tmp_path):
    data = b'{"x": 1}\0 and binary \xff'
    with tstore.open(store, "a") as st:
        st.write_attachment("sub/config.json", data)
        st.write_attachment("empty.txt", b"")
        with tstore.open(store) as other:
            assert other.attachments() == {}  # staged: not visible before the commit
    with tstore.open(store, "a") as st:
        st.delete("w")
        with tstore.open(store) as other:
            assert other.keys() == ["old"]  # a delete does not wait for the commit
        with pytest.raises(KeyError):
            st.delete("w")
        with pytest.raises(ValueError):
            st.write_attachment("../escape", b"x")
        assert st.attachments() == {"empty.txt": 0, "sub/config.json": len(data)}
        assert st.read_attachment("sub/config.json") == data
        with pytest.raises(KeyError):
            st.read_attachment("absent")
    out = tmp_path / "out"
    run(cli, "export", store, f"{out}/")
    assert (out / "sub" / "config.json").read_bytes() == data
    assert (out / "empty.txt").read_bytes() == b""


def test_dcp_keeps_small_float_tensors_exact_by_the_librarys_size_rules():
    """tstore.torch.dcp writes tensors the auto policy keeps exact for their size (1-D, fewer
    than 4096 elements: docs/CLI.md) lossless under a named codec: the library's rules."""
    from tstore import _policy
    def small(a):
        return _policy.small_exact(_policy.source(a, "x"))
    assert small(np.zeros(10000, np.float32))          # 1-D
    assert small(np.zeros((64, 63), np.float32))       # 4032 elements
    assert not small(np.zeros((64, 64), np.float32))   # 4096
    assert not small(np.zeros((8,), np.int32))         # integers are raw anyway
