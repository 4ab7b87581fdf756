#!/usr/bin/env bash
# Import memory stays bounded: sources many times larger than --read-buffer are imported in a
# peak of anonymous memory that does not grow with the source (a source three times as large adds
# less than an eighth of the extra bytes) and stays well below the larger source's size (its
# large tensors are streamed, or read twice, scan then encode); and the import stores what the
# import of bbc4365 stored (the digests of tests/cli/import_same.sh): nvfp4 (scanned in
# pieces), auto (its sample gathered from pieces), raw (streamed).
. "${srcdir:-.}/tests/cli/lib.sh"
DIGEST="$B/tests/robust/tsdigest"
[ -x "$DIGEST" ] || { echo "SKIP: $DIGEST is not built"; exit 77; }
G="${srcdir:-.}/tests/cli/import_digests"
"$GEN" -q --layers 1 --hidden 1024 --intermediate 8192 --vocab 256 --kv-dim 256 --seed 11 \
	-o "$T/wide.safetensors" || fail gen
"$GEN" -q --layers 3 --hidden 1024 --intermediate 8192 --vocab 256 --kv-dim 256 --seed 11 \
	-o "$T/wide3.safetensors" || fail gen
src_kb=$(($(stat -c %s "$T/wide.safetensors") / 1024))
src3_kb=$(($(stat -c %s "$T/wide3.safetensors") / 1024))
# sanitizers' shadow memory makes resident sizes meaningless: check contents only
sanitized=0
grep -q '^SANITIZER_CFLAGS = .*sanitize' "$B/Makefile" 2>/dev/null && sanitized=1

# run_peak CMD...: run CMD, its peak anonymous memory (RssAnon sampled every 10 ms, kB) in
# $peak: what the import allocates, not the page cache of the files it maps (VmHWM counts those:
# auto reads its sample rows and rewrites through the source's mapping)
run_peak() {
	"$@" >"$T/out" 2>"$T/err" &
	local pid=$! h
	peak=0
	while kill -0 "$pid" 2>/dev/null; do
		h=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status" 2>/dev/null)
		[ -n "$h" ] && [ "$h" -gt "$peak" ] && peak=$h
		sleep 0.01
	done
	wait "$pid" || { cat "$T/err" >&2; fail "'$*' failed"; }
}

for codec in nvfp4 auto raw; do
	rm -f "$T/s.tst" "$T/s.tst-lock"
	run_peak "$TSTORE" import -q --read-buffer 4MiB --codec "$codec" "$T/s.tst" "$T/wide.safetensors"
	peak1=$peak
	"$DIGEST" "$T/s.tst" >"$T/got" || fail "tsdigest"
	diff -u "$G/wide-$codec.digest" "$T/got" >&2 || fail "$codec: not what bbc4365 stored"
	rm -f "$T/s.tst" "$T/s.tst-lock"
	run_peak "$TSTORE" import -q --read-buffer 4MiB --codec "$codec" "$T/s.tst" "$T/wide3.safetensors"
	echo "$codec: peak ${peak1} kB for a source of ${src_kb} kB, ${peak} kB for ${src3_kb} kB"
	if [ "$sanitized" = 0 ] && [ $((peak - peak1)) -ge $(((src3_kb - src_kb) / 8)) ]; then
		fail "$codec: peak anonymous memory grew by $((peak - peak1)) kB with the source"
	fi
	if [ "$sanitized" = 0 ] && [ "$peak" -ge $((src3_kb / 2)) ]; then
		fail "$codec: peak anonymous memory $peak kB, the source is $src3_kb kB"
	fi
done
expect 2 "$TSTORE" import --read-buffer 0 "$T/s.tst" "$T/wide.safetensors"
expect 2 "$TSTORE" import --read-buffer lots "$T/s.tst" "$T/wide.safetensors"
exit 0
