"""NumPy basic indexing of an on-disk tensor, turned into one hyperslab read.

An index (ints, negative ints, slices with any step, one Ellipsis, fewer indices than
dimensions) becomes, per dimension, the bounding range [lo, lo + span) that the library reads,
and what to do with the read block afterwards: take every step-th element, reverse it, or drop
the dimension (an int). When every step is 1 the read block IS the result (no copy).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass


@dataclass
class Plan:
    start: list[int]      # hyperslab start, per dimension of the tensor
    count: list[int]      # hyperslab extent (the bounding range of the selection)
    step: list[int]       # 1, or the |step| of a stepped slice
    flip: list[bool]      # a negative step: the selection runs backwards
    keep: list[bool]      # False for an int index (the dimension is dropped)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return tuple(len(range(0, c, s)) for c, s, k in zip(self.count, self.step, self.keep)
                     if k)

    @property
    def read_shape(self) -> tuple[int, ...]:
        return tuple(self.count)

    @property
    def direct(self) -> bool:
        """True when the read block is the result as it is (every step 1, nothing reversed)."""
        return all(s == 1 for s in self.step) and not any(self.flip)

    @property
    def empty(self) -> bool:
        return any(c == 0 for c in self.count)


def plan(index, shape: tuple[int, ...]) -> Plan:
    """The read plan of @p index on a tensor of @p shape; IndexError or ValueError as NumPy."""
    ndim = len(shape)
    items = index if isinstance(index, tuple) else (index,)
    nell = sum(1 for it in items if it is Ellipsis)
    if nell > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    given = len(items) - nell
    if given > ndim:
        raise IndexError(f"too many indices for tensor: tensor is {ndim}-dimensional, but "
                         f"{given} were indexed")
    expanded = []
    for it in items:
        if it is Ellipsis:
            expanded.extend([slice(None)] * (ndim - given))
        else:
            expanded.append(it)
    expanded.extend([slice(None)] * (ndim - len(expanded)))

    p = Plan([], [], [], [], [])
    for axis, (it, n) in enumerate(zip(expanded, shape)):
        if isinstance(it, slice):
            start, stop, step = it.indices(n)  # ValueError for a zero step, as NumPy
            length = len(range(start, stop, step))
            lo = start if step > 0 else start + (length - 1) * step
            if length == 0:
                lo = 0
            p.start.append(lo)
            p.count.append((length - 1) * abs(step) + 1 if length else 0)
            p.step.append(abs(step))
            p.flip.append(step < 0 and length > 1)
            p.keep.append(True)
            continue
        if isinstance(it, bool) or it is None:
            raise IndexError(f"unsupported index {it!r} on axis {axis}: only integers, slices "
                             "and '...' (NumPy basic indexing without newaxis)")
        try:
            i = operator.index(it)
        except TypeError:
            raise IndexError(f"unsupported index {it!r} on axis {axis}: only integers, slices "
                             "and '...' (NumPy basic indexing without newaxis)") from None
        if i < -n or i >= n:
            raise IndexError(f"index {i} is out of bounds for axis {axis} with size {n}")
        p.start.append(i + n if i < 0 else i)
        p.count.append(1)
        p.step.append(1)
        p.flip.append(False)
        p.keep.append(False)
    return p


def finish_view(block, p: Plan, flip):
    """The selection of @p p taken from the read @p block (a NumPy array or torch tensor of
    p.read_shape): stepped and dropped dimensions as views; @p flip(x, dims) reverses dims."""
    sel = tuple(slice(None, None, s) if k else 0 for s, k in zip(p.step, p.keep))
    out = block[sel]
    dims = [d for d, (f, k) in enumerate(zip(p.flip, p.keep)) if k and f]
    # positions of the flipped dims after the int-indexed ones are dropped
    kept = [d for d, k in enumerate(p.keep) if k]
    dims = [kept.index(d) for d in dims]
    return flip(out, dims) if dims else out
