#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install the named Debian packages that are not installed yet.
# Works as root, through sudo otherwise, and says what to do when neither works.
set -euo pipefail
missing=()
for pkg in "$@"; do
	# nodejs from another repository (nodesource) counts: only the commands matter
	case "$pkg" in
	nodejs) command -v node >/dev/null 2>&1 && continue ;;
	npm) command -v npm >/dev/null 2>&1 && continue ;;
	chromium) command -v chromium >/dev/null 2>&1 && continue ;;
	esac
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing missing Debian packages: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
	run=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	run=(sudo)
else
	echo "deps: these packages are missing: ${missing[*]}" >&2
	echo "deps: run 'sudo apt-get install ${missing[*]}' (or 'make deps' as root), then try again." >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${run[@]}" apt-get update -qq
"${run[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
