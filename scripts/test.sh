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

# pytest's "no tests collected" (exit 5) must not pass as green: a broken test layout.
run_pytest() {
  local rc=0
  (cd python && pytest "$@") || rc=$?
  if [ $rc -eq 5 ]; then
    echo "pytest collected no tests ($*): treating as failure" >&2
    return 1
  fi
  return $rc
}

echo "== pytest"
# Everything but the VM tests, on both cores (pytest-xdist). Meanwhile the VM image (cached by its
# inputs, ~6 min cold, mostly downloads and one boot) builds in the background for the VM tests.
image_pid=""
if [ "${TGI_NIX_SKIP_VM:-0}" != 1 ] && [ "$(id -u)" = 0 ]; then
  (cd python && exec python -m tgi_nix.testing.vm) >.vm-image.log 2>&1 &
  image_pid=$!
fi
rc=0
run_pytest -m "not vm" -n "${TGI_NIX_JOBS:-2}" "$@" || rc=$?
[ "${TGI_NIX_SKIP_VM:-0}" = 1 ] && exit $rc
if [ -n "$image_pid" ] && ! wait "$image_pid"; then
  echo "building the VM image failed:" >&2
  tail -n 40 .vm-image.log >&2
  exit 1
fi
# The VM tests, two QEMUs at a time: one VM under TCG keeps ~1.3 of the two cores busy (measured
# during cold starts), so two side by side finish the scenarios in about two thirds of the time.
# loadgroup keeps test_vm_machine.py's tests (one shared machine) on one worker.
run_pytest -m vm -n "${TGI_NIX_VM_JOBS:-2}" --dist loadgroup "$@" || rc=$?
exit $rc
