"""Several writer processes, one store: tstore.open(path, "a") waits for another process's
writer (busy_timeout: for ever by default, bounded, or not at all), a killed writer is waited
out and its unpublished writes removed, and processes that create and append to the same new
store at once (rounds of 4, one of them failing) end with one store holding every tensor that
was published, `tstore fsck` clean."""

import multiprocessing
import os
import signal
import time

import numpy as np
import pytest

import tstore
import tstore.numpy
from conftest import run

ROUNDS = 20
WORKERS = 4
MP = multiprocessing.get_context("fork")  # the parent holds no open store when it forks


def _arr(worker: int, rnd: int, k: int) -> np.ndarray:
    return np.random.default_rng(1000 * rnd + 10 * worker + k).standard_normal(
        (64, 96)).astype(np.float32)


def _round_worker(i, paths, barrier, errors):
    """Worker @p i of each round: at the barrier, write into the round's new store; worker
    WORKERS-1 fails its save_file (NaN under nvfp4) after staging a tensor."""
    try:
        for r, path in enumerate(paths):
            barrier.wait()
            if i == WORKERS - 1:
                bad = _arr(i, r, 1)
                bad[3, 5] = np.nan
                with pytest.raises(ValueError, match="NaN"):
                    tstore.numpy.save_file({"a.fail": _arr(i, r, 0), "b.fail": bad}, path,
                                           codec="nvfp4")
            elif i % 2:
                tstore.numpy.save_file({f"w{i}.0": _arr(i, r, 0), f"w{i}.1": _arr(i, r, 1)},
                                       path, codec="raw")
            else:
                with tstore.open(path, "a") as st:
                    st.write(f"w{i}.0", _arr(i, r, 0), codec="raw")
                    st.write(f"w{i}.1", _arr(i, r, 1), codec="lossless")
    except BaseException as e:  # reported by the parent
        errors.put(f"worker {i}: {e!r}")
        barrier.abort()


def test_processes_create_and_fill_one_new_store_in_rounds(tmp_path, cli):
    paths = [str(tmp_path / f"r{r}" / "s.tst") for r in range(ROUNDS)]
    for p in paths:
        os.mkdir(os.path.dirname(p))
    barrier, errors = MP.Barrier(WORKERS), MP.Queue()
    procs = [MP.Process(target=_round_worker, args=(i, paths, barrier, errors))
             for i in range(WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    assert errors.empty(), errors.get()
    want = sorted(f"w{i}.{k}" for i in range(WORKERS - 1) for k in range(2))
    for r, path in enumerate(paths):
        left = sorted(os.listdir(os.path.dirname(path)))
        assert left == ["s.tst", "s.tst-lock"], (r, left)  # no second store, no temporaries
        with tstore.safe_open(path, "np") as f:
            assert f.keys() == want, r
            for name in want:
                i, k = int(name[1]), int(name[3])
                assert np.array_equal(f.get_tensor(name), _arr(i, r, k)), (r, name)
        assert run(cli, "fsck", path).returncode == 0


def _hold(path, ready, release):
    """Be the store's writer, with a tensor staged, until @p release is set."""
    with tstore.open(path, "a") as st:
        st.write("held", np.arange(1000, dtype=np.int32))
        ready.set()
        release.wait(60)


def _holder(path):
    ready, release = MP.Event(), MP.Event()
    p = MP.Process(target=_hold, args=(path, ready, release))
    p.start()
    assert ready.wait(30), "the holder did not open the store"
    return p, release


@pytest.fixture
def store(tmp_path):
    p = str(tmp_path / "s.tst")
    tstore.numpy.save_file({"old": np.arange(10, dtype=np.int64)}, p)
    return p


def test_busy_timeout_zero_and_bounded_fail_with_the_store_unchanged(store):
    holder, release = _holder(store)
    try:
        t0 = time.monotonic()
        with pytest.raises(tstore.TstoreError) as e:
            tstore.open(store, "a", busy_timeout=0)
        assert e.value.errname == "TS_EBUSY" and "open for writing elsewhere" in e.value.detail
        assert time.monotonic() - t0 < 2
        t0 = time.monotonic()
        with pytest.raises(tstore.TstoreError) as e:
            tstore.open(store, "a", busy_timeout=0.5)
        waited = time.monotonic() - t0
        assert e.value.errname == "TS_EBUSY"
        assert 0.45 <= waited < 5, waited
        with tstore.open(store) as st:  # readers never wait
            assert st.keys() == ["old"]
    finally:
        release.set()
        holder.join(30)
    assert holder.exitcode == 0
    with tstore.open(store) as st:
        assert st.keys() == ["held", "old"]


def test_the_default_waits_for_the_other_writer(store):
    holder, release = _holder(store)
    try:
        MP.Process(target=lambda: (time.sleep(0.5), release.set())).start()
        t0 = time.monotonic()
        with tstore.open(store, "a") as st:  # busy_timeout=None: until the holder closes
            waited = time.monotonic() - t0
            assert "held" in st  # opened after the holder published
            st.write("mine", np.ones(5, np.int8))
    finally:
        release.set()
        holder.join(30)
    assert waited >= 0.4, waited
    with tstore.open(store) as st:
        assert st.keys() == ["held", "mine", "old"]


def _wait_and_write(path, errors):
    try:
        with tstore.open(path, "a") as st:
            st.write("after", np.full(7, 3, np.int16))
    except BaseException as e:
        errors.put(repr(e))


def test_a_writer_killed_while_another_waits(store, cli):
    holder, release = _holder(store)
    errors = MP.Queue()
    waiter = MP.Process(target=_wait_and_write, args=(store, errors))
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive()  # waiting for the holder
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(30)
    waiter.join(60)
    assert waiter.exitcode == 0 and errors.empty(), errors.get()
    with tstore.open(store) as st:
        assert st.keys() == ["after", "old"]  # the killed writer's staged tensor is gone
        assert np.array_equal(st.read("after"), np.full(7, 3, np.int16))
    assert run(cli, "fsck", store).returncode == 0


def test_bad_busy_timeout(store):
    for bad in (-1, "soon", float("nan"), 1e10):
        with pytest.raises(ValueError, match="busy_timeout"):
            tstore.open(store, "a", busy_timeout=bad)
