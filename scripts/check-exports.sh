#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What `make install` puts on a machine exports th_* names only (make
# check-exports; CI runs it):
#  1. install from the build directory (default build/) into a scratch DESTDIR;
#  2. no static archive is installed (it carries every internal name; the
#     programs and the tests link it inside the build only);
#  3. every installed shared library defines, in its dynamic symbol table
#     (nm -D --defined-only), nothing but th_* names, and at least th_version.
# Prints each offending name or file; exits 1 when any, 2 without a build.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
[ -f "$build/build.ninja" ] || {
	echo "check-exports: no build in $build/ (run: meson setup $build)" >&2
	exit 2
}
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
if ! out=$(meson install -C "$build" --destdir "$dest" 2>&1); then
	echo "$out" >&2
	echo "check-exports: meson install into a scratch directory failed" >&2
	exit 1
fi
status=0
fail() { echo "check-exports: $*"; status=1; }

while IFS= read -r a; do
	fail "a static archive is installed: ${a#"$dest"}"
done < <(find "$dest" -name '*.a')

libs=$(find "$dest" -name 'libtrellohook.so*' -type f)
[ -n "$libs" ] || fail "no libtrellohook.so was installed"
for so in $libs; do
	syms=$(nm -D --defined-only "$so" | awk '{print $NF}')
	grep -qx 'th_version' <<<"$syms" || fail "${so#"$dest"}: th_version is not exported"
	while IFS= read -r s; do
		[ -n "$s" ] && fail "${so#"$dest"}: exports $s (only th_* may be exported)"
	done < <(grep -v '^th_' <<<"$syms" || true)
done
[ $status -eq 0 ] && echo "check-exports: ok (the shared library exports th_* only; no archive installed)"
exit $status
