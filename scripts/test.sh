#!/usr/bin/env bash
# The test command: lint, types, generated files, then every test (VM tests included; they boot
# QEMU under software emulation and take minutes). TGI_NIX_SKIP_VM=1 leaves the VM tests out.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "== ruff" && (cd python && ruff check src tests ../benchmarks)
echo "== mypy" && (cd python && mypy src)
echo "== generated options/docs" && tgi-nix options --check
echo "== nix parse" && git ls-files -co --exclude-standard '*.nix' | xargs -r -n1 nix-instantiate --parse >/dev/null
echo "== shellcheck" && shellcheck modules/huggingface-tgi/scripts/*.sh

marker=()
[ "${TGI_NIX_SKIP_VM:-0}" = 1 ] && marker=(-m "not vm")
echo "== pytest"
set +e
(cd python && pytest "${marker[@]}" "$@")
rc=$?
set -e
if [ $rc -eq 5 ]; then
  # pytest's "no tests collected": a broken test layout must not pass as green.
  echo "pytest collected no tests: treating as failure" >&2
  exit 1
fi
exit $rc
