"""get_slice: every NumPy basic indexing form against NumPy on the full tensor read by the
command (`tstore slice`), in both frameworks; bad indices raise as NumPy does."""

import numpy as np
import pytest

import tstore
import tstore.numpy
from conftest import needs_torch, run, torch

INDICES = [
    0, -1, 3, np.int64(2), (2, 3), (-1, -1, -1), (), Ellipsis, (Ellipsis,),
    slice(None), slice(1, 4), slice(-3, None), slice(None, None, 2), slice(None, None, -1),
    slice(5, 1, -2), slice(100, 200), slice(2, 2), (slice(1, 5), Ellipsis, slice(None, None, -3)),
    (Ellipsis, 3), (1, Ellipsis), (1, slice(None), slice(3, 30, 7)), (slice(None), -2),
    (slice(None, None, 3), slice(2, 9), slice(-1, -40, -5)), (slice(-100, 100),),
    (0, 0, slice(None, None, -1)), (5, slice(0, 10, 4), 39),
]


@pytest.fixture(scope="module")
def store3d(tmp_path_factory, cli):
    """A 3-D F32 tensor (raw) and a 2-D NVFP4 one, and their full values from the command."""
    d = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(7)
    a = rng.standard_normal((6, 10, 40)).astype(np.float32)
    w = rng.standard_normal((96, 80)).astype(np.float32)
    p = d / "s.tst"
    tstore.numpy.save_file({"a": a}, p, codec="raw")
    tstore.numpy.save_file({"w": w}, p, codec="nvfp4")
    full = {}
    for n in ("a", "w"):
        run(cli, "slice", "-o", d / f"{n}.npy", p, n)
        full[n] = np.load(d / f"{n}.npy")
    assert np.array_equal(full["a"], a)  # raw is exact: the command read what was written
    return p, full


@pytest.mark.parametrize("index", INDICES, ids=repr)
def test_numpy_indexing_equals_numpy(store3d, index):
    p, full = store3d
    with tstore.safe_open(p, "np") as f:
        sl = f.get_slice("a")
        assert sl.get_shape() == [6, 10, 40] and sl.get_dtype() == "F32"
        got, want = sl[index], full["a"][index]
        assert got.shape == want.shape
        assert got.dtype == want.dtype
        assert np.array_equal(got, want)
        assert got.flags.c_contiguous


@needs_torch
@pytest.mark.parametrize("index", INDICES, ids=repr)
def test_torch_indexing_equals_numpy(store3d, index):
    p, full = store3d
    with tstore.safe_open(p, "pt") as f:
        got = f.get_slice("a")[index]
        want = full["a"][index]
        assert isinstance(got, torch.Tensor) and got.is_contiguous()
        assert tuple(got.shape) == want.shape
        assert np.array_equal(got.numpy(), want)


@pytest.mark.parametrize("index", [(slice(3, 40), slice(17, 70)), (slice(None, None, -5), 7),
                                   (-1,), (slice(90, 3, -11), slice(None, None, 16))], ids=repr)
def test_slices_of_a_coded_tensor_equal_the_whole_decoded(store3d, index):
    p, full = store3d
    with tstore.safe_open(p, "np") as f:
        assert np.array_equal(f.get_slice("w")[index], full["w"][index])


@pytest.mark.parametrize("index,exc", [
    ((0, 0, 0, 0), IndexError), (6, IndexError), (-7, IndexError), ((0, 10), IndexError),
    ((Ellipsis, Ellipsis), IndexError), (1.5, IndexError), (slice(None, None, 0), ValueError),
], ids=repr)
def test_bad_indices_raise_like_numpy(store3d, index, exc):
    p, full = store3d
    with pytest.raises(exc):
        full["a"][index]
    with tstore.safe_open(p, "np") as f:
        with pytest.raises(exc):
            f.get_slice("a")[index]


@pytest.mark.parametrize("index", [[0, 1], None, True, (0, None), np.array([1, 2])], ids=repr)
def test_advanced_indexing_and_newaxis_are_refused(store3d, index):
    p, _ = store3d
    with tstore.safe_open(p, "np") as f:
        with pytest.raises(IndexError, match="basic indexing"):
            f.get_slice("a")[index]
