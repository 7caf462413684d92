#!/usr/bin/env bash
# The UI's toolchain (Vite 8) needs Node.js 20.19 or newer with npm. Debian's own nodejs package
# is older, so a missing or old Node is reported in words rather than installed.
set -euo pipefail

need_major=20 need_minor=19
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "The UI needs Node.js ${need_major}.${need_minor}+ and npm; none found on PATH." >&2
  exit 1
fi
version=$(node --version)  # v20.20.2
IFS=. read -r major minor _ <<<"${version#v}"
if (( major < need_major || (major == need_major && minor < need_minor) )); then
  echo "The UI needs Node.js ${need_major}.${need_minor}+; found ${version} at $(command -v node)." >&2
  exit 1
fi
