"""Concurrent reads: 8 threads calling get_tensor/get_slice on one handle get what one thread
gets (the library runs with the GIL released)."""

import threading

import numpy as np

import tstore


def test_eight_threads_read_one_handle(checkpoint):
    _, store = checkpoint
    with tstore.safe_open(store, "np") as f:
        names = f.keys()
        want = {n: f.get_tensor(n) for n in names}
        errors, results = [], [None] * 8
        start = threading.Barrier(8)

        def worker(i):
            try:
                start.wait()
                got = {}
                for r in range(5):
                    for n in names[i % 3:] + names[:i % 3]:
                        got[n] = f.get_tensor(n)
                        part = f.get_slice(n)[..., ::-1]
                        assert np.array_equal(part, want[n][..., ::-1])
                results[i] = got
            except Exception as e:  # reported below, on the main thread
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        for got in results:
            for n in names:
                assert got[n].tobytes() == want[n].tobytes(), n


def test_library_calls_release_the_gil():
    """ctypes.CDLL (not PyDLL) releases the GIL around every foreign call."""
    import ctypes

    import tstore._lib
    assert type(tstore._lib.lib) is ctypes.CDLL
