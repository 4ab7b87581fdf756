#!/usr/bin/env bash
# Progress of import, export and fsck on stderr: plain lines when stderr is a file (every
# TSTORE_PROGRESS_SECONDS; nothing for short work by default), a bar redrawn in place with rate
# and ETA on a terminal (a pseudo-terminal from script(1)), nothing with -q — and the commands'
# results are the same in all three cases.
. "${srcdir:-.}/tests/cli/lib.sh"
"$GEN" -q --size small -o "$T/s.safetensors" || fail gen

# -q: no progress at all; this is the reference result
expect 0 "$TSTORE" import -q --codec nvfp4 "$T/q.tst" "$T/s.safetensors"
[ ! -s "$T/err" ] || fail "import -q wrote to stderr: $(cat "$T/err")"
expect 0 "$TSTORE" export -q "$T/q.tst" "$T/q.safetensors"
[ ! -s "$T/err" ] || fail "export -q wrote to stderr"
expect 0 "$TSTORE" fsck -q "$T/q.tst"
[ ! -s "$T/err" ] || fail "fsck -q wrote to stderr"
[ ! -s "$T/out" ] || fail "fsck -q wrote to stdout"

# plain lines, stderr redirected: "CMD: PCT% DONE/TOTAL RATE/s ETA mm:ss", then ", done";
# never a carriage return or an escape sequence
plain() { # LABEL: check $T/err
	grep -Eq "^$1: +[0-9]+% .+/.+ .+/s ETA [0-9-]+:[0-9-]+\$" "$T/err" ||
		{ cat "$T/err" >&2; fail "$1: no plain progress line"; }
	grep -Eq "^$1: 100% .+/s, done\$" "$T/err" || { cat "$T/err" >&2; fail "$1: no final line"; }
	! grep -q $'[\r\033]' "$T/err" || fail "$1: terminal control characters in plain progress"
}
TSTORE_PROGRESS_SECONDS=0 expect 0 "$TSTORE" import --codec nvfp4 "$T/p.tst" "$T/s.safetensors"
plain import
out_has "import: "
TSTORE_PROGRESS_SECONDS=0 expect 0 "$TSTORE" export "$T/p.tst" "$T/p.safetensors"
plain export
expect 0 "$STCHECK" compare "$T/q.safetensors" "$T/p.safetensors" --exact
TSTORE_PROGRESS_SECONDS=0 expect 0 "$TSTORE" fsck "$T/p.tst"
plain fsck
out_has "fsck: $T/p.tst: clean"
# by default, work shorter than 5 s prints no progress in a log
expect 0 "$TSTORE" fsck "$T/p.tst"
[ ! -s "$T/err" ] || fail "fsck printed progress for short work: $(cat "$T/err")"
# the command's variables follow the library's rule: empty is unset, a set value must parse
# (a usage error naming it, nothing done)
TSTORE_PROGRESS_SECONDS= expect 0 "$TSTORE" fsck "$T/p.tst"
TSTORE_PROGRESS_SECONDS=soon expect 2 "$TSTORE" fsck "$T/p.tst"
err_has "tstore: fsck: TSTORE_PROGRESS_SECONDS='soon': expected a number of seconds"
cp "$T/p.tst" "$T/m.tst"
TSTORE_MAP_MAX=-1 expect 2 "$TSTORE" rm "$T/m.tst" model.embed_tokens.weight
err_has "TSTORE_MAP_MAX='-1': expected a positive number of bytes"
cmp -s "$T/p.tst" "$T/m.tst" || fail "rm changed the store under a bad TSTORE_MAP_MAX"
TSTORE_TEST_FSCK_INPROCESS=yes expect 2 "$TSTORE" fsck "$T/p.tst"
TSTORE_TEST_FSCK_INPROCESS=1 expect 0 "$TSTORE" fsck "$T/p.tst"
out_has "fsck: $T/p.tst: clean"

# a terminal: the bar, redrawn in place (\r, erase line), with rate and ETA; a newline at the end
if ! command -v script >/dev/null 2>&1 || ! script -qfec true /dev/null >/dev/null 2>&1; then
	echo "progress: no script(1) with a pseudo-terminal here: terminal checks skipped"
	echo "progress: ok"
	exit 0
fi
tty_run() { # OUTFILE CMD...: run CMD on a pseudo-terminal (stdout and stderr), status kept
	local out=$1 cmd="" a
	shift
	for a in "$@"; do cmd+=" $(printf '%q' "$a")"; done
	script -qfec "env LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-} $cmd" /dev/null >"$out" </dev/null
}
bar() { # LABEL FILE
	grep -aEq $'\r\033\\[K'"$1"' \[#{30}\] 100% .+/.+ .+/s ETA [0-9:]+' "$2" ||
		{ cat -A "$2" >&2; fail "$1: no finished progress bar on the terminal"; }
}
tty_run "$T/tty.out" "$TSTORE" import --codec nvfp4 "$T/t.tst" "$T/s.safetensors" ||
	fail "import on a terminal exited $?"
bar import "$T/tty.out"
grep -aq "import: .* tensors from 1 file" "$T/tty.out" || fail "import summary missing"
tty_run "$T/tty.out" "$TSTORE" export "$T/t.tst" "$T/t.safetensors" || fail "export on a terminal"
bar export "$T/tty.out"
expect 0 "$STCHECK" compare "$T/q.safetensors" "$T/t.safetensors" --exact
tty_run "$T/tty.out" "$TSTORE" fsck "$T/t.tst" || fail "fsck on a terminal exited $?"
bar fsck "$T/tty.out"
grep -aq "fsck: $T/t.tst: clean" "$T/tty.out" || fail "fsck result on a terminal"
tty_run "$T/tty.out" "$TSTORE" fsck -q "$T/t.tst" || fail "fsck -q on a terminal"
[ ! -s "$T/tty.out" ] || { cat -A "$T/tty.out"; fail "fsck -q printed on a terminal"; }
# a damaged store: the same problems and exit status with the bar as without
expect 0 "$TSTORE" import -q --codec raw "$T/d.tst" "$T/s.safetensors"
expect 0 "$STCHECK" flip "$T/d.tst" "$T/s.safetensors" model.layers.0.mlp.up_proj.weight
expect 1 "$TSTORE" fsck "$T/d.tst"
grep -v '^fsck: ' "$T/out" >"$T/problems.plain"
[ -s "$T/problems.plain" ] || fail "no problem reported"
tty_run "$T/tty.out" "$TSTORE" fsck "$T/d.tst"
st=$?
[ $st -eq 1 ] || fail "fsck of a damaged store on a terminal exited $st"
bar fsck "$T/tty.out"
tr -d '\r' <"$T/tty.out" | sed 's/.*\x1b\[K.*//' | grep -v '^fsck: ' | grep -v '^$' >"$T/problems.tty"
cmp -s "$T/problems.plain" "$T/problems.tty" ||
	{ diff "$T/problems.plain" "$T/problems.tty" >&2; fail "fsck problems differ on a terminal"; }
echo "progress: ok"
