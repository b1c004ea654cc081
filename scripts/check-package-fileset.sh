#!/usr/bin/env bash
# Proof that pkgs/tgi-nix's source file set holds everything its checkPhase reads: copy exactly the
# paths in pkgs/tgi-nix/fileset.json (the list the Nix package builds from) into an empty directory
# and run the checkPhase's test selection (-m "not vm") there, against the copy's own package and
# Nix core, without CI=true (the Nix build sandbox has neither ../shared nor CI).
#   scripts/check-package-fileset.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-$PWD/.venv/bin/python}
copy=$(mktemp -d "${TMPDIR:-/tmp}/tgi-nix-fileset.XXXXXX")
trap 'rm -rf "$copy"' EXIT
# readable by the unprivileged user some tests switch to, like a build directory
chmod 0755 "$copy"
mapfile -t paths < <("$python" -c 'import json; print("\n".join(json.load(open("pkgs/tgi-nix/fileset.json"))))')
for p in "${paths[@]}"; do
  [ -e "$p" ] || { echo "fileset.json names $p, which does not exist" >&2; exit 1; }
  mkdir -p "$copy/$(dirname "$p")"
  cp -a "$p" "$copy/$p"
done
find "$copy" \( -name __pycache__ -o -name '*.egg-info' -o -name build \) -prune -exec rm -rf {} +
echo "fileset copy: $(find "$copy" -type f | wc -l) files in $copy" >&2
cd "$copy/python"
env -u CI TGI_NIX_ROOT="$copy" PYTHONPATH="$copy/python/src" PATH="$(dirname "$python"):$PATH" \
  "$python" -m pytest -m "not vm" -q -p no:cacheprovider "$@"
