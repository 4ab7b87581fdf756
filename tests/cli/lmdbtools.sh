#!/usr/bin/env bash
# A store is a plain LMDB file: Debian's lmdb-utils read it (docs/FORMAT.md, section 9).
# mdb_stat -n lists the four databases with the right entry counts, mdb_dump -n -p shows the
# meta records and one key per tensor, and neither changes the store.
. "${srcdir:-.}/tests/cli/lib.sh"
command -v mdb_stat >/dev/null && command -v mdb_dump >/dev/null ||
	{ echo "SKIP: lmdb-utils (mdb_stat, mdb_dump) not installed"; exit 77; }
make_tiny
expect 0 "$TSTORE" import -q --codec raw "$T/s.tst" "$T/tiny.safetensors"
"$STCHECK" info "$T/tiny.safetensors" | cut -d' ' -f1 >"$T/names"
n=$(wc -l <"$T/names")
cp "$T/s.tst" "$T/copy.tst"

# the main database names exactly the four databases of the format
expect 0 mdb_stat -n "$T/s.tst"
out_has "Entries: 4"
expect 0 mdb_stat -n -a "$T/s.tst"
for db in meta pages pending tensors; do out_has "Status of $db"; done
# one record per tensor; nothing pending after a completed import
expect 0 mdb_stat -n -s tensors "$T/s.tst"
out_has "Entries: $n"
expect 0 mdb_stat -n -s pending "$T/s.tst"
out_has "Entries: 0"

# meta: the format record is "TSTR" then version 1 (u32 little-endian)
expect 0 mdb_dump -n -p -s meta "$T/s.tst"
grep -A1 -x ' format' "$T/out" | tail -1 | grep -qx ' TSTR\\01\\00\\00\\00' ||
	{ cat "$T/out"; fail "meta.format is not TSTR version 1"; }
grep -A1 -x ' creator' "$T/out" | tail -1 | grep -q '^ tstore ' || fail "meta.creator"
# tensors: the keys, in LMDB's order, are the tensor names in byte order
expect 0 mdb_dump -n -p -s tensors "$T/s.tst"
sed -n '/^HEADER=END$/,/^DATA=END$/p' "$T/out" | sed '1d;$d' | awk 'NR%2==1' | sed 's/^ //' \
	>"$T/keys"
LC_ALL=C sort "$T/names" | cmp -s - "$T/keys" || { diff "$T/names" "$T/keys"; fail "tensor keys"; }

# reading changed nothing in the data file, and the store is still clean
cmp -s "$T/s.tst" "$T/copy.tst" || fail "LMDB's tools changed the store"
expect 0 "$TSTORE" fsck "$T/s.tst"
out_has clean
echo "lmdbtools: ok"
