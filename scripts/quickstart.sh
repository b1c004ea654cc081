#!/usr/bin/env bash
# The main job on a fresh machine: install, validate the example spec, generate its NixOS module
# and render plain systemd units from the same Nix core.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-vm
spec=${1:-examples/quick-deploy.toml}
out=${2:-out}
.venv/bin/tgi-nix validate "$spec"
.venv/bin/tgi-nix generate "$spec" -o "$out/huggingface-tgi-instances.nix"
.venv/bin/tgi-nix render-units "$spec" -o "$out/units"
echo "done: $out/huggingface-tgi-instances.nix (NixOS module) and $out/units/ (plain systemd units)"
