#!/usr/bin/env bash
# Install what tgi-nix needs on a Debian-like machine (idempotent): Nix (evaluation only),
# systemd-analyze, podman (unit verification), shellcheck (the units' shell scripts),
# QEMU + mmdebstrap (VM tests), and a Python venv.
#   scripts/setup.sh          everything
#   scripts/setup.sh --no-vm  skip the VM tooling
set -euo pipefail
cd "$(dirname "$0")/.."

want_vm=1
[ "${1:-}" = "--no-vm" ] && want_vm=0

packages=(nix-bin systemd podman shellcheck python3-venv)
if [ "$want_vm" = 1 ]; then
  packages+=(qemu-system-x86 qemu-utils mmdebstrap e2fsprogs zstd)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/tgi-nix ] || [ python/pyproject.toml -nt .venv/.installed ]; then
  echo "setup: creating .venv and installing tgi-nix with dev tools" >&2
  "$python" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e 'python[dev]'
  touch .venv/.installed
fi
echo "setup: ready (.venv/bin/tgi-nix)" >&2
