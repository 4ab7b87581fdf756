#!/usr/bin/env bash
# make check's corruption suite: 200 byte-flipping trials (make check-corrupt runs thousands).
B=${TS_BUILDDIR:-$(pwd)}
for p in "$B/tests/robust/corrupt" "$B/tools/tstore"; do
	[ -x "$p" ] || { echo "SKIP: $p is not built"; exit 77; }
done
exec "$B/tests/robust/corrupt" -n "${CORRUPT_TRIALS:-200}" -T "$B/tools/tstore"
