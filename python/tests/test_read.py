"""Reading a store made by `tstore import`: values bit for bit equal to `tstore slice` and
`tstore export`, dtypes, metadata, load_file."""

import numpy as np
import pytest

import tstore
import tstore.numpy
from conftest import bf16_bits, needs_torch, read_safetensors, run, torch, write_safetensors


def _slice_npy(cli, store, name, tmp_path, dtype=None, rng=None):
    out = tmp_path / "s.npy"
    args = [cli, "slice", "-o", out] + (["--dtype", dtype] if dtype else []) + [store, name]
    run(*args + ([rng] if rng else []))
    return np.load(out)


def test_numpy_equals_cli_export_f32_bit_for_bit(checkpoint, cli, tmp_path):
    _, store = checkpoint
    run(cli, "export", "-q", "--dtype", "f32", store, tmp_path / "f32.safetensors")
    exported, _ = read_safetensors(tmp_path / "f32.safetensors")
    with tstore.safe_open(store, framework="np") as f:
        assert f.keys() == sorted(exported)
        for name in f.keys():
            a, ref = f.get_tensor(name), exported[name][1]
            assert a.dtype == ref.dtype and a.shape == ref.shape, name
            assert a.tobytes() == ref.tobytes(), name


@pytest.mark.parametrize("rng,index", [("100:300,5", np.s_[100:300, 5]), ("-1", np.s_[-1]),
                                       ("7:9", np.s_[7:9])])
def test_numpy_slice_equals_cli_slice(checkpoint, cli, tmp_path, rng, index):
    _, store = checkpoint
    name = "model.embed_tokens.weight"
    with tstore.safe_open(store, framework="np") as f:
        a = f.get_slice(name)[index]
    ref = _slice_npy(cli, store, name, tmp_path, "f32", rng)
    assert a.shape == ref.shape and a.tobytes() == ref.tobytes()


@needs_torch
def test_torch_equals_cli_export_bit_for_bit(checkpoint, cli, tmp_path):
    src, store = checkpoint
    run(cli, "export", "-q", store, tmp_path / "out.safetensors")
    exported, _ = read_safetensors(tmp_path / "out.safetensors")
    source, _ = read_safetensors(src)
    with tstore.safe_open(store, framework="pt") as f:
        assert sorted(f.keys()) == sorted(exported)
        for name, (dt, ref) in exported.items():
            t = f.get_tensor(name)
            assert f.get_slice(name).get_dtype() == dt == source[name][0]
            bits = bf16_bits(t) if dt == "BF16" else t.numpy()
            assert bits.dtype == ref.dtype and bits.shape == ref.shape, name
            assert bits.tobytes() == ref.tobytes(), name


def test_metadata_is_the_sources_and_export_writes_it_back(checkpoint, cli, tmp_path):
    src, store = checkpoint
    _, meta = read_safetensors(src)
    assert meta and meta["generator"]
    with tstore.safe_open(store, "numpy") as f:
        assert f.metadata() == meta
    run(cli, "export", "-q", store, tmp_path / "out.safetensors")
    assert read_safetensors(tmp_path / "out.safetensors")[1] == meta


def test_a_store_without_metadata_gives_none(tmp_path):
    p = tmp_path / "s.tst"
    tstore.numpy.save_file({"x": np.arange(4, dtype=np.int32)}, p)
    with tstore.safe_open(p, "np") as f:
        assert f.metadata() is None


def test_numpy_dtype_argument_equals_cli(checkpoint, cli, tmp_path):
    _, store = checkpoint
    name = "model.layers.0.mlp.up_proj.weight"
    with tstore.safe_open(store, "np") as f:
        a = f.get_tensor(name, dtype=np.float16)
        assert a.dtype == np.float16
        assert a.tobytes() == _slice_npy(cli, store, name, tmp_path, "f16").tobytes()
        with pytest.raises(ValueError):
            f.get_tensor("model.position_ids", dtype=np.float32)
        with pytest.raises(ValueError):
            f.get_tensor(name, dtype=np.int32)


@needs_torch
def test_torch_dtype_argument_equals_cli(checkpoint, cli, tmp_path):
    _, store = checkpoint
    name = "model.layers.1.mlp.down_proj.weight"
    with tstore.safe_open(store, "pt") as f:
        t = f.get_tensor(name, dtype=torch.float32)
        assert t.dtype == torch.float32
        assert t.numpy().tobytes() == _slice_npy(cli, store, name, tmp_path, "f32").tobytes()
        h = f.get_tensor(name, dtype=torch.float16)
        assert h.numpy().tobytes() == _slice_npy(cli, store, name, tmp_path, "f16").tobytes()


def test_load_file_numpy_equals_get_tensor(checkpoint):
    _, store = checkpoint
    d = tstore.numpy.load_file(store)
    with tstore.safe_open(store, "np") as f:
        assert list(d) == f.keys()
        for k, v in d.items():
            assert np.array_equal(v, f.get_tensor(k))


@needs_torch
def test_load_file_torch_dtypes_are_the_sources(checkpoint):
    import tstore.torch
    src, store = checkpoint
    source, _ = read_safetensors(src)
    d = tstore.torch.load_file(store, device="cpu")
    want = {"BF16": torch.bfloat16, "F32": torch.float32, "I64": torch.int64, "BOOL": torch.bool}
    for k, v in d.items():
        assert v.dtype == want[source[k][0]], k
        assert list(v.shape) == list(source[k][1].shape)


def _e4m3(b: int) -> float:
    """E4M3 (OCP FP8, bias 7, no Inf, S.1111.111 NaN) decoded from its definition."""
    s, e, m = b >> 7, (b >> 3) & 15, b & 7
    if e == 15 and m == 7:
        return float("nan")
    v = (m / 8) * 2.0 ** -6 if e == 0 else (1 + m / 8) * 2.0 ** (e - 7)
    return -v if s else v


def test_f8_and_unsigned_sources(tmp_path, cli):
    codes = np.arange(256, dtype=np.uint8).reshape(16, 16)
    u16 = np.arange(40, dtype=np.uint16).reshape(4, 10) * 1000
    src = tmp_path / "f8.safetensors"
    write_safetensors(src, {"e4": ("F8_E4M3", codes), "e5": ("F8_E5M2", codes),
                            "u16": ("U16", u16)})
    run(cli, "import", "-q", tmp_path / "f8.tst", src)
    with tstore.safe_open(tmp_path / "f8.tst", "np") as f:
        e4 = f.get_tensor("e4")
        ref4 = np.array([_e4m3(b) for b in range(256)], np.float32).reshape(16, 16)
        assert e4.dtype == np.float32
        np.testing.assert_array_equal(e4, ref4)  # NaN == NaN here
        e5 = f.get_tensor("e5")
        ref5 = (codes.astype(np.uint16) << 8).view(np.float16).astype(np.float32)
        np.testing.assert_array_equal(e5, ref5)
        assert f.get_slice("e4").get_dtype() == "F8_E4M3"
        np.testing.assert_array_equal(f.get_slice("e4")[3:5, ::-2], ref4[3:5, ::-2])
        assert np.array_equal(f.get_tensor("u16"), u16)
    if torch is not None:
        with tstore.safe_open(tmp_path / "f8.tst", "pt") as f:
            np.testing.assert_array_equal(f.get_tensor("e5").numpy(), ref5)
            with pytest.raises(ValueError, match="U16"):
                f.get_tensor("u16")


# -- get_tensors / load_file through ts_read_many, get_rows through ts_read_rows ---------------

def test_get_tensors_equals_get_tensor_bit_for_bit(checkpoint):
    _, store = checkpoint
    with tstore.safe_open(store, framework="np") as f:
        names = f.keys()
        got = f.get_tensors()
        assert sorted(got) == names
        for name in names:
            ref = f.get_tensor(name)
            assert got[name].dtype == ref.dtype and got[name].shape == ref.shape, name
            assert got[name].tobytes() == ref.tobytes(), name
        some = f.get_tensors(names[::2])
        assert sorted(some) == sorted(names[::2])


def test_load_file_arrays_keep_their_memory_alive(checkpoint):
    import gc
    _, store = checkpoint
    d = tstore.numpy.load_file(store)
    name = "model.embed_tokens.weight"
    keep = d[name]
    ref = keep.copy()
    del d
    gc.collect()
    # the buffer the arrays shared is still mapped: reading and writing the survivor works
    assert keep.tobytes() == ref.tobytes()
    keep[...] = 0
    assert not keep.any()


def test_get_tensors_missing_name_is_keyerror(checkpoint):
    _, store = checkpoint
    with tstore.safe_open(store, framework="np") as f:
        with pytest.raises(KeyError):
            f.get_tensors(["model.embed_tokens.weight", "no.such.tensor"])


def test_get_rows_equals_rows_of_get_tensor(checkpoint):
    _, store = checkpoint
    name = "model.embed_tokens.weight"
    with tstore.safe_open(store, framework="np") as f:
        whole = f.get_tensor(name)
        rows = [5, 0, len(whole) - 1, 5, 17, 3, -1, 17]
        got = f.get_rows(name, rows)
        assert got.shape == (len(rows), whole.shape[1]) and got.dtype == whole.dtype
        assert got.tobytes() == whole[rows].tobytes()
        assert f.get_rows(name, []).shape == (0, whole.shape[1])
        with pytest.raises(IndexError):
            f.get_rows(name, [0, len(whole)])
        with pytest.raises(KeyError):
            f.get_rows("no.such.tensor", [0])


@needs_torch
def test_torch_load_file_and_get_rows_equal_get_tensor(checkpoint):
    _, store = checkpoint
    d = tstore.torch.load_file(store)
    with tstore.safe_open(store, framework="pt") as f:
        assert sorted(d) == f.keys()
        for name in f.keys():
            ref = f.get_tensor(name)
            assert d[name].dtype == ref.dtype and d[name].shape == ref.shape, name
            assert torch.equal(d[name].view(torch.uint8) if ref.dtype == torch.bool else d[name],
                               ref.view(torch.uint8) if ref.dtype == torch.bool else ref), name
        name = "model.embed_tokens.weight"
        whole = f.get_tensor(name)
        rows = [3, 1, 3, 0]
        got = f.get_rows(name, rows)
        assert got.dtype == whole.dtype and torch.equal(got, whole[rows])
