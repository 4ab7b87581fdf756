#!/usr/bin/env bash
# Install what building and testing tstore needs on a Debian machine, if it is missing.
# Runs apt-get only as root and only when a package is absent; otherwise says what to install.
set -euo pipefail

packages=(build-essential autoconf automake libtool pkg-config
	liblmdb-dev libxxhash-dev liburing-dev libzstd-dev libcriterion-dev lmdb-utils
	python3 python3-numpy python3-pytest python3-torch)
[ "${TS_DEPS_EXTRA:-}" ] && packages+=(${TS_DEPS_EXTRA})

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "tstore: missing Debian packages: ${missing[*]}" >&2
	echo "tstore: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "tstore: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
