# Sourced by the command-line tests (tests/cli/*.sh). Each test works in a fresh mktemp -d
# directory, removed on exit, and uses the built tools/tstore, tools/gen_checkpoint and
# tests/cli/stcheck (an independent checker: no python or numpy needed).
set -u
B=${TS_BUILDDIR:-$(pwd)}
TSTORE="$B/tools/tstore"
GEN="$B/tools/gen_checkpoint"
STCHECK="$B/tests/cli/stcheck"
for p in "$TSTORE" "$GEN" "$STCHECK"; do
	[ -x "$p" ] || { echo "SKIP: $p is not built"; exit 77; }
done
# Run the real binary rather than libtool's wrapper script (which costs most of a second per
# call on a loaded machine).
if [ -x "$B/tools/.libs/tstore" ] && [ -d "$B/.libs" ]; then
	export LD_LIBRARY_PATH="$B/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
	TSTORE="$B/tools/.libs/tstore"
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/tstore-cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
export TSTORE_CACHE_BYTES=${TSTORE_CACHE_BYTES:-16777216}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# expect STATUS CMD...: run CMD, stdout to $T/out, stderr to $T/err; fail unless it exits STATUS.
expect() {
	local want=$1 got
	shift
	"$@" >"$T/out" 2>"$T/err"
	got=$?
	if [ "$got" -ne "$want" ]; then
		echo "--- stdout" >&2; cat "$T/out" >&2
		echo "--- stderr" >&2; cat "$T/err" >&2
		fail "'$*' exited $got, expected $want"
	fi
}

# err_has TEXT: the last command's stderr contains TEXT.
err_has() {
	grep -qF -- "$1" "$T/err" || { cat "$T/err" >&2; fail "stderr lacks '$1'"; }
}
out_has() {
	grep -qF -- "$1" "$T/out" || { cat "$T/out" >&2; fail "stdout lacks '$1'"; }
}

# A tiny BF16 checkpoint with extras (I64, BOOL, F32 1-D) at $T/tiny.safetensors.
make_tiny() {
	"$GEN" -q --size tiny --extras -o "$T/tiny.safetensors" "$@" || fail "gen_checkpoint"
}
