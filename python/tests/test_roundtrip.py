"""Round trips through save_file and get_tensor for every codec the library reports and every
dtype, in both frameworks: values equal to what `tstore export` reads bit for bit, and within
the codec's error of the original; integers and bool exact. save_file's policy is import's."""

import numpy as np
import pytest

import tstore
import tstore.numpy
from conftest import (bf16_bits, needs_torch, read_safetensors, rel_rms, run, torch,
                      write_safetensors)

CODECS = tstore.codecs()
EXACT = ("raw", "lossless")  # codecs that keep every bit
INTS = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64,
        np.bool_]


def _matrix(seed=3, shape=(64, 256)):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _export(cli, store, tmp_path):
    run(cli, "export", "-q", store, tmp_path / "e.safetensors")
    return read_safetensors(tmp_path / "e.safetensors")[0]


def test_the_library_reports_the_known_codecs():
    assert CODECS[:5] == ["raw", "nvfp4", "mxfp4", "int8", "fp8"]


@pytest.mark.parametrize("codec", CODECS + ["auto"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_numpy_round_trip(tmp_path, cli, codec, dtype):
    x = _matrix().astype(dtype)
    p = tmp_path / "s.tst"
    tstore.numpy.save_file({"w": x}, p, codec=codec)
    with tstore.safe_open(p, "np") as f:
        info = f.store.info("w")
        y = f.get_tensor("w")
    assert info.codec == (codec if codec != "auto" else info.codec)
    assert info.dtype == {np.float32: "F32", np.float16: "F16"}[dtype]
    assert y.dtype == dtype and y.shape == x.shape
    exported = _export(cli, p, tmp_path)["w"][1]
    assert y.tobytes() == exported.tobytes()
    if info.codec in EXACT and info.raw_dtype == info.dtype:
        assert y.tobytes() == x.tobytes()
    else:
        err = rel_rms(x, y)
        assert 0 < err <= 15 and err == pytest.approx(info.rel_rms_pct, rel=0.05, abs=0.05)


@needs_torch
@pytest.mark.parametrize("codec", CODECS + ["auto"])
@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
def test_torch_round_trip(tmp_path, cli, codec, dtype):
    import tstore.torch
    dt = getattr(torch, dtype)
    x = torch.from_numpy(_matrix(5)).to(dt)
    p = tmp_path / "s.tst"
    tstore.torch.save_file({"w": x}, p, codec=codec)
    with tstore.safe_open(p, "pt") as f:
        info = f.store.info("w")
        y = f.get_tensor("w")
    assert y.dtype == dt and y.shape == x.shape
    exported = _export(cli, p, tmp_path)["w"][1]
    got = bf16_bits(y) if dt == torch.bfloat16 else y.numpy()
    assert got.tobytes() == exported.tobytes()
    if info.codec in EXACT and info.raw_dtype == info.dtype:
        assert torch.equal(x, y)
    else:
        assert 0 < rel_rms(x.float().numpy(), y.float().numpy()) <= 15


@pytest.mark.parametrize("dtype", INTS, ids=lambda d: np.dtype(d).name)
def test_integers_and_bool_are_exact_numpy(tmp_path, dtype):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 2 if dtype is np.bool_ else 120, (3, 7, 11)).astype(dtype)
    p = tmp_path / "s.tst"
    tstore.numpy.save_file({"i": x, "s": np.array(x[0, 0, 0])}, p, codec="nvfp4")
    d = tstore.numpy.load_file(p)
    assert d["i"].dtype == x.dtype and np.array_equal(d["i"], x)
    assert d["s"].shape == () and d["s"] == x[0, 0, 0]


@needs_torch
@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32", "int64", "bool",
                                   "float64"])
def test_integers_bool_f64_are_exact_torch(tmp_path, dtype):
    import tstore.torch
    x = (torch.arange(-40, 40) % 7).reshape(8, 10).to(getattr(torch, dtype))
    p = tmp_path / "s.tst"
    tstore.torch.save_file({"i": x, "e": x[:0]}, p)
    d = tstore.torch.load_file(p)
    assert d["i"].dtype == x.dtype and torch.equal(d["i"], x)
    assert d["e"].shape == (0, 10)


@needs_torch
def test_save_file_chooses_what_import_chooses(tmp_path, cli, gen):
    """The same tensors through `tstore import` and save_file: same codecs and stored bytes,
    the same values bit for bit."""
    import tstore.torch
    src = tmp_path / "m.safetensors"
    run(gen, "--size", "tiny", "--extras", "--nonfinite", "model.layers.0.mlp.up_proj.weight",
        "-q", "-o", src)
    run(cli, "import", "-q", tmp_path / "cli.tst", src)
    source, meta = read_safetensors(src)
    tensors = {}
    for n, (dt, a) in source.items():
        if dt == "BF16":
            tensors[n] = torch.from_numpy(a.view(np.int16).copy()).view(torch.bfloat16)
        else:
            tensors[n] = torch.from_numpy(a.copy())
    tstore.torch.save_file(tensors, tmp_path / "py.tst", metadata=meta)
    with tstore.safe_open(tmp_path / "cli.tst", "pt") as a, \
            tstore.safe_open(tmp_path / "py.tst", "pt") as b:
        assert a.keys() == b.keys() and a.metadata() == b.metadata() == meta
        for n in a.keys():
            ia, ib = a.store.info(n), b.store.info(n)
            assert (ia.codec, ia.raw_dtype, ia.stored_bytes, ia.tile_rows, ia.tile_cols) == \
                   (ib.codec, ib.raw_dtype, ib.stored_bytes, ib.tile_rows, ib.tile_cols), n
            ta, tb = a.get_tensor(n), b.get_tensor(n)
            assert ta.dtype == tb.dtype
            assert ta.view(torch.uint8).numpy().tobytes() == tb.view(torch.uint8).numpy().tobytes()


def test_nonfinite_values_stay_lossless_under_auto(tmp_path):
    x = _matrix()
    x[3, 4], x[5, 6] = np.nan, -np.inf
    p = tmp_path / "s.tst"
    tstore.numpy.save_file({"w": x}, p)
    with tstore.safe_open(p, "np") as f:
        assert f.store.info("w").codec in EXACT
        np.testing.assert_array_equal(f.get_tensor("w"), x)
    with pytest.raises(ValueError, match="NaN or Inf"):
        tstore.numpy.save_file({"w2": x}, p, codec="nvfp4")


def test_cli_import_of_a_written_safetensors_reads_back(tmp_path, cli):
    x = _matrix(9, (32, 128))
    write_safetensors(tmp_path / "a.safetensors", {"x": ("F32", x)}, {"k": "v"})
    run(cli, "import", "-q", "--codec", "raw", tmp_path / "a.tst", tmp_path / "a.safetensors")
    with tstore.safe_open(tmp_path / "a.tst", "np") as f:
        assert f.metadata() == {"k": "v"}
        assert np.array_equal(f.get_tensor("x"), x)
