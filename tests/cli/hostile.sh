#!/usr/bin/env bash
# Hostile safetensors inputs: each is rejected with a clear error naming the problem, exit 1,
# and nothing is imported (a new store is not created; an existing one is unchanged).
. "${srcdir:-.}/tests/cli/lib.sh"
export LC_ALL=C

# mkst FILE HEADER DATA_BYTES: an 8-byte little-endian header length, HEADER, zero bytes.
mkst() {
	local n=${#2}
	printf "$(printf '\\%03o' $((n & 255)) $(((n >> 8) & 255)) $(((n >> 16) & 255)) $(((n >> 24) & 255)) 0 0 0 0)" >"$1"
	printf '%s' "$2" >>"$1"
	head -c "$3" /dev/zero >>"$1"
}

make_tiny
expect 0 "$TSTORE" import --codec raw "$T/base.tst" "$T/tiny.safetensors"
expect 0 "$TSTORE" inspect --json "$T/base.tst"
cp "$T/out" "$T/before.json"

A='"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}'
# rejected FILE EXPECTED-TEXT: fails on a new store and on an existing one, changing nothing.
rejected() {
	expect 1 "$TSTORE" import "$T/new.tst" "$1"
	err_has "tstore: import: "
	err_has "$2"
	[ ! -e "$T/new.tst" ] || fail "$2: a failing import created a store"
	expect 1 "$TSTORE" import "$T/base.tst" "$T/tiny.safetensors" "$1"
	err_has "$2"
	expect 0 "$TSTORE" inspect --json "$T/base.tst"
	cmp -s "$T/out" "$T/before.json" || fail "$2: the existing store changed"
}

head -c 5 "$T/tiny.safetensors" >"$T/h1.safetensors"
rejected "$T/h1.safetensors" "too short"
head -c 50000 "$T/tiny.safetensors" >"$T/h2.safetensors"
rejected "$T/h2.safetensors" "past the end of the data"
printf '\377\377\000\000\000\000\000\000{}' >"$T/h3.safetensors"
rejected "$T/h3.safetensors" "runs past the end of the file"
printf '\000\000\000\000\001\000\000\000{}' >"$T/h4.safetensors"
rejected "$T/h4.safetensors" "exceeds the limit"
mkst "$T/h5.safetensors" '{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},}' 16
rejected "$T/h5.safetensors" "not valid JSON"
mkst "$T/h6.safetensors" "{$A,\"b\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[8,24]}}" 24
rejected "$T/h6.safetensors" "overlap"
mkst "$T/h7.safetensors" "{$A,\"b\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[16,32]}}" 20
rejected "$T/h7.safetensors" "past the end of the data"
mkst "$T/h8.safetensors" '{"a":{"dtype":"Q7","shape":[2,2],"data_offsets":[0,16]}}' 16
rejected "$T/h8.safetensors" "unknown dtype 'Q7'"
mkst "$T/h9.safetensors" "{$A,$A}" 16
rejected "$T/h9.safetensors" "duplicate name"
mkst "$T/h10.safetensors" $'{"a\xff\xfe":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}' 16
rejected "$T/h10.safetensors" "UTF-8"
mkst "$T/h11.safetensors" '{"a":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,16]}}' 16
rejected "$T/h11.safetensors" "overflows"
mkst "$T/h12.safetensors" '{"a":{"dtype":"F32","shape":[3,3],"data_offsets":[0,16]}}' 16
rejected "$T/h12.safetensors" "shape and dtype give 36 bytes"
mkst "$T/h13.safetensors" '{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}} ' 24
rejected "$T/h13.safetensors" "after the last tensor"
mkst "$T/h14.safetensors" '[1,2,3]' 0
rejected "$T/h14.safetensors" "not a JSON object"
: >"$T/h15.safetensors"
rejected "$T/h15.safetensors" "too short"
# a directory (read as a model directory: an empty one has no checkpoint)
mkdir "$T/dir.safetensors"
expect 1 "$TSTORE" import "$T/new.tst" "$T/dir.safetensors"
err_has "no *.safetensors file and no index"
[ ! -e "$T/new.tst" ] || fail "an empty directory created a store"
expect 2 "$TSTORE" import "$T/base.tst" "$T/tiny.safetensors" "$T/dir.safetensors"
err_has "must be the only SRC"
expect 0 "$TSTORE" inspect --json "$T/base.tst"
cmp -s "$T/out" "$T/before.json" || fail "a directory among sources changed the store"
# A ModelOpt group with a wrong scale shape
mkst "$T/h16.safetensors" '{"x":{"dtype":"U8","shape":[2,8],"data_offsets":[0,16]},"x_scale":{"dtype":"F8_E4M3","shape":[2,2],"data_offsets":[16,20]},"x_scale_2":{"dtype":"F32","shape":[],"data_offsets":[20,24]}}' 24
rejected "$T/h16.safetensors" "ModelOpt NVFP4 group"
echo "hostile: ok"
