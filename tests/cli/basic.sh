#!/usr/bin/env bash
# Command conventions: --help everywhere, --version, usage errors exit 2 with
# 'tstore: <command>: <what>' on stderr, unknown commands and options.
. "${srcdir:-.}/tests/cli/lib.sh"

expect 0 "$TSTORE" --help
out_has "usage: tstore"
out_has "Exit status"
expect 0 "$TSTORE" --version
grep -qE '^tstore [0-9]+\.[0-9]+\.[0-9]+ \(library ' "$T/out" || fail "--version format"
for c in import export inspect slice fsck rm compact; do
	expect 0 "$TSTORE" "$c" --help
	out_has "usage: tstore $c"
	expect 2 "$TSTORE" "$c"
	err_has "tstore: $c: "
	expect 2 "$TSTORE" "$c" --no-such-option
done
expect 0 "$TSTORE" bench --help
expect 2 "$TSTORE"
expect 2 "$TSTORE" frobnicate
err_has "unknown command 'frobnicate'"
expect 2 "$TSTORE" --frob
expect 2 "$TSTORE" import --codec zip "$T/s.tst" "$T/x.safetensors"
err_has "unknown codec 'zip'"
expect 2 "$TSTORE" import --max-error -1 "$T/s.tst" "$T/x.safetensors"
expect 2 "$TSTORE" import --recipe fast "$T/s.tst" "$T/x.safetensors"
expect 2 "$TSTORE" import --jobs 0 "$T/s.tst" "$T/x.safetensors"
expect 2 "$TSTORE" export --dtype f64 "$T/s.tst" "$T/o.safetensors"
expect 2 "$TSTORE" export --layout gguf "$T/s.tst" "$T/o.safetensors"
expect 2 "$TSTORE" slice --dtype i8 "$T/s.tst" x
# A missing store: could not run, exit 2, message names the store.
expect 2 "$TSTORE" inspect "$T/none.tst"
err_has "tstore: inspect: cannot open store $T/none.tst"
expect 2 "$TSTORE" fsck "$T/none.tst"
# A missing source: exit 1, nothing created.
expect 1 "$TSTORE" import "$T/s.tst" "$T/missing.safetensors"
err_has "tstore: import: $T/missing.safetensors"
[ ! -e "$T/s.tst" ] || fail "import of a missing source created the store"
# -q silences the summary.
make_tiny
expect 0 "$TSTORE" -q import "$T/s.tst" "$T/tiny.safetensors"
[ ! -s "$T/out" ] || fail "-q printed: $(cat "$T/out")"
expect 0 "$TSTORE" import -q "$T/s2.tst" "$T/tiny.safetensors"
[ ! -s "$T/out" ] || fail "import -q printed"
echo "basic: ok"
