#!/usr/bin/env bash
# Model directories in and out (tools/cli/modeldir.c, tools/cli/export_dir.c): a sharded checkpoint
# with config, tokenizer (nested) and other files imports with its files attached, and
# `export OUT/` gives every file back byte-identical and every tensor bit-identical, in shards
# of at most --max-shard-size; a single model.safetensors when it fits; files over the size
# limit, hidden files and --no-files are not attached; hostile inputs (a symlink out of the
# directory, an index naming a missing shard or a tensor twice) are refused with nothing
# imported; a non-empty OUT is refused unless --force; rm --file; inspect lists the files.
. "${srcdir:-.}/tests/cli/lib.sh"
M="$T/model"
mkdir -p "$M/tokenizer/extra" "$M/.cache"
"$GEN" -q --size tiny --shards 3 -o "$M" || fail gen
printf '{"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "rms_norm_eps": 1e-05}\n' \
	>"$M/config.json"
printf '{"bos_token_id": 1}' >"$M/generation_config.json"
head -c 3000 /dev/urandom >"$M/tokenizer/tokenizer.model"
printf 'a b c\n' >"$M/tokenizer/extra/vocab list.txt"   # a space in the name
: >"$M/empty.txt"
head -c 200000 /dev/urandom >"$M/big.bin"              # over --max-file-size 100KB
printf 'hidden' >"$M/.cache/x" ; printf 'x' >"$M/.gitattributes"
ln -s tokenizer/tokenizer.model "$M/tok.link"           # a link inside: followed

expect 0 "$TSTORE" import --codec raw --max-file-size 100KB "$T/s.tst" "$M"
out_has "files: 6 attached"
out_has "not attached: big.bin (over the size limit"
out_has "checkpoint index model.safetensors.index.json"
expect 0 "$TSTORE" inspect "$T/s.tst"
for f in config.json generation_config.json tokenizer/tokenizer.model \
	"tokenizer/extra/vocab list.txt" empty.txt tok.link; do
	grep -qF "file $f " "$T/out" || fail "inspect does not list $f"
done
grep -q "big.bin\|\.cache\|gitattributes\|safetensors" <(grep '^file ' "$T/out") &&
	fail "a file that should not be attached is listed"
expect 0 "$TSTORE" inspect --json "$T/s.tst"
cp "$T/out" "$T/insp.json"
out_has '"name": "tokenizer/tokenizer.model"'
out_has '"bytes": 3000'
expect 0 "$STCHECK" json "$T/insp.json"
expect 0 "$TSTORE" fsck "$T/s.tst"
out_has clean

# export into a directory: files byte-identical, tensors bit-identical, shards <= the limit
expect 0 "$TSTORE" export --max-shard-size 100KB "$T/s.tst" "$T/out1/"
for f in config.json generation_config.json tokenizer/tokenizer.model \
	"tokenizer/extra/vocab list.txt" empty.txt; do
	cmp -s "$M/$f" "$T/out1/$f" || fail "$f differs after export"
done
cmp -s "$M/tokenizer/tokenizer.model" "$T/out1/tok.link" || fail "tok.link differs"
[ -e "$T/out1/big.bin" ] && fail "big.bin was exported"
ls -A "$T/out1" | grep -q '^\.' && fail "a hidden file was exported"
n=$(ls "$T/out1" | grep -c '^model-.*\.safetensors$')
[ "$n" -ge 3 ] || fail "$n shards for 100KB (308 kB of tensors)"
for s in "$T"/out1/model-*.safetensors; do
	case "$s" in *-of-0000"$n".safetensors) ;; *) fail "shard name $s (of $n)" ;; esac
	"$STCHECK" info "$s" >/dev/null || fail "$s is not a safetensors file"
done
expect 0 "$TSTORE" export "$T/s.tst" "$T/one.safetensors"
for s in "$M"/model-*.safetensors; do
	expect 0 "$STCHECK" compare "$s" "$T/one.safetensors" --exact --subset
done
total=0
for s in "$T"/out1/model-*.safetensors; do
	expect 0 "$STCHECK" compare "$s" "$T/one.safetensors" --exact --subset
	# tensor data of a shard (file size less header) within the limit unless one tensor alone
	hl=$(od -An -tu8 -N8 "$s" | tr -d ' ')
	data=$(( $(stat -c %s "$s") - 8 - hl ))
	total=$((total + data))
	cnt=$("$STCHECK" info "$s" | wc -l)
	[ "$data" -le 100000 ] || [ "$cnt" -eq 1 ] || fail "$s holds $data bytes of tensors"
done
# the index: total_size and a weight_map naming every tensor once, in its shard
I="$T/out1/model.safetensors.index.json"
expect 0 "$STCHECK" jsonget "$I" metadata/total_size
[ "$(cat "$T/out")" = "$total" ] || fail "total_size $(cat "$T/out"), shards hold $total"
expect 0 "$STCHECK" jsonget "$I" weight_map
sort "$T/out" >"$T/wm"
"$STCHECK" info "$T/one.safetensors" | cut -d' ' -f1 | sort >"$T/all"
cmp -s "$T/wm" "$T/all" || fail "weight_map names differ from the tensors"
for s in "$T"/out1/model-*.safetensors; do
	for name in $("$STCHECK" info "$s" | cut -d' ' -f1); do
		expect 0 "$STCHECK" jsonget "$I" "weight_map/$name"
		[ "$(cat "$T/out")" = "$(basename "$s")" ] || fail "weight_map: $name is in $s"
	done
done
# and the directory imports again as the same tensors
expect 0 "$TSTORE" import --codec raw "$T/s2.tst" "$T/out1"
expect 0 "$TSTORE" export "$T/s2.tst" "$T/two.safetensors"
expect 0 "$STCHECK" compare "$T/one.safetensors" "$T/two.safetensors" --exact

# the same round trip through the lossless codec
expect 0 "$TSTORE" import -q --codec lossless --max-file-size 100KB "$T/l.tst" "$M"
expect 0 "$TSTORE" export --max-shard-size 100KB "$T/l.tst" "$T/lossless.out/"
for s in "$T"/lossless.out/model-*.safetensors; do
	expect 0 "$STCHECK" compare "$s" "$T/one.safetensors" --exact --subset
done
cmp -s "$M/tokenizer/tokenizer.model" "$T/lossless.out/tokenizer/tokenizer.model" ||
	fail "lossless: tokenizer.model differs"

# everything fits one shard: model.safetensors, no index
expect 0 "$TSTORE" export "$T/s.tst" "$T/out2/"
[ -f "$T/out2/model.safetensors" ] || fail "no model.safetensors"
[ -e "$T/out2/model.safetensors.index.json" ] && fail "an index for one shard"
expect 0 "$STCHECK" compare "$T/out2/model.safetensors" "$T/one.safetensors" --exact

# a non-empty OUT is refused unless --force; an empty one is fine
mkdir "$T/full" "$T/empty"; echo keep >"$T/full/mine.txt"
expect 1 "$TSTORE" export "$T/s.tst" "$T/full"
err_has "not empty"
[ "$(cat "$T/full/mine.txt")" = keep ] && [ ! -e "$T/full/config.json" ] || fail "full changed"
expect 0 "$TSTORE" export "$T/s.tst" "$T/empty"
[ -f "$T/empty/config.json" ] || fail "export into an empty directory"
expect 0 "$TSTORE" export --force "$T/s.tst" "$T/full/"
[ -e "$T/full/mine.txt" ] && fail "--force kept the old contents"
cmp -s "$M/config.json" "$T/full/config.json" || fail "--force export"
ls -A "$T" | grep -q '\.export-\|\.old-' && fail "temporary directories left behind"

# a directory of one model.safetensors (no index)
mkdir "$T/single"
make_tiny; cp "$T/tiny.safetensors" "$T/single/model.safetensors"
cp "$M/config.json" "$T/single/"
expect 0 "$TSTORE" import -q --codec raw "$T/single.tst" "$T/single"
expect 0 "$TSTORE" export "$T/single.tst" "$T/single.out/"
expect 0 "$STCHECK" compare "$T/tiny.safetensors" "$T/single.out/model.safetensors" --exact
cmp -s "$M/config.json" "$T/single.out/config.json" || fail "single: config.json"

# a store inside the directory it imports is not attached to itself
cp -r "$T/single" "$T/selfdir"
expect 0 "$TSTORE" import -q --codec raw "$T/selfdir/s.tst" "$T/selfdir"
expect 0 "$TSTORE" import --codec raw --replace "$T/selfdir/s.tst" "$T/selfdir"
out_has "files: 1 attached"
expect 0 "$TSTORE" inspect "$T/selfdir/s.tst"
grep -q '^file s.tst' "$T/out" && fail "the store attached itself"

# --no-files
expect 0 "$TSTORE" import -q --codec raw --no-files "$T/nf.tst" "$M"
expect 0 "$TSTORE" inspect "$T/nf.tst"
grep -q '^file ' "$T/out" && fail "--no-files attached files"

# rm --file: all or nothing, then gone
expect 1 "$TSTORE" rm --file config.json --file nope "$T/s.tst"
expect 0 "$TSTORE" inspect "$T/s.tst"
out_has "file config.json "
expect 0 "$TSTORE" rm --file config.json "$T/s.tst"
expect 0 "$TSTORE" inspect "$T/s.tst"
grep -q "^file config.json " "$T/out" && fail "rm --file left it"
# names in the store already: --skip-existing attaches only the missing files, --replace
# replaces them, neither is an error naming one
expect 0 "$TSTORE" import --codec raw --skip-existing --max-file-size 100KB "$T/s.tst" "$M"
out_has "files: 1 attached"
expect 0 "$TSTORE" inspect "$T/s.tst"
out_has "file config.json "
expect 0 "$TSTORE" import -q --codec raw --replace "$T/s.tst" "$M"
expect 1 "$TSTORE" import -q --codec raw "$T/s.tst" "$M"
err_has "already exists"

# hostile: a symlink out of the directory refuses the import, the store unchanged
cp "$T/s.tst" "$T/before.tst"
mkdir "$T/evil"; cp "$M"/model-0000*.safetensors "$M/model.safetensors.index.json" "$T/evil/"
echo secret >"$T/secret.txt"; ln -s ../secret.txt "$T/evil/config.json"
expect 1 "$TSTORE" import --replace --codec raw "$T/s.tst" "$T/evil"
err_has "leads outside"
cmp -s "$T/s.tst" "$T/before.tst" || fail "a refused import changed the store"
expect 1 "$TSTORE" import --codec raw "$T/evil.tst" "$T/evil"
[ -e "$T/evil.tst" ] && fail "a refused import created the store"
rm "$T/evil/config.json"; ln -s /etc/hostname "$T/evil/config.json"
expect 1 "$TSTORE" import --codec raw "$T/evil.tst" "$T/evil"
err_has "leads outside"
rm "$T/evil/config.json"
# an index naming a missing shard, or a tensor twice: nothing imported
sed 's/model-00002-of-00003/model-00009-of-00003/' "$M/model.safetensors.index.json" \
	>"$T/evil/model.safetensors.index.json"
expect 1 "$TSTORE" import --codec raw "$T/evil.tst" "$T/evil"
err_has "model-00009-of-00003"
[ -e "$T/evil.tst" ] && fail "an index naming a missing shard created the store"
sed 's/^\(  "weight_map": {\)$/\1\n    "lm_head.weight": "model-00001-of-00003.safetensors",/' \
	"$M/model.safetensors.index.json" >"$T/evil/model.safetensors.index.json"
grep -c '"lm_head.weight"' "$T/evil/model.safetensors.index.json" | grep -qx 2 ||
	fail "could not make an index naming a tensor twice"
expect 1 "$TSTORE" import --codec raw "$T/evil.tst" "$T/evil"
[ -e "$T/evil.tst" ] && fail "an index naming a tensor twice created the store"
# a damaged page of an attached file: fsck names the file, export refuses to write it
mkdir "$T/dmg"
cp "$M/model.safetensors.index.json" "$M"/model-0000*.safetensors "$T/dmg/"
printf 'MARKER-attached-file-0123456789' >"$T/dmg/notes.txt"
expect 0 "$TSTORE" import -q --codec raw "$T/d.tst" "$T/dmg"
off=$(grep -obUa 'MARKER-attached-file' "$T/d.tst" | head -1 | cut -d: -f1)
[ -n "$off" ] || fail "the attached bytes are not in the store file"
printf 'N' | dd of="$T/d.tst" bs=1 seek=$((off + 3)) conv=notrunc 2>/dev/null
expect 1 "$TSTORE" fsck "$T/d.tst"
out_has "(file 'notes.txt', page 0)"
expect 1 "$TSTORE" export "$T/d.tst" "$T/dmg.out/"
err_has "notes.txt"
[ -e "$T/dmg.out" ] && fail "a failed export left a directory"
ls -A "$T" | grep -q '\.export-' && fail "a failed export left its temporary directory"
echo "modeldir: ok"
