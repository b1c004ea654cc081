"""Mutation score of the Nix core: named textual mutations, each applied to a temporary copy of
modules/huggingface-tgi (TGI_NIX_ROOT points the tests at it), then the fast non-VM tests that
should catch it. Prints caught/survived and lists the survivors. Not in CI (minutes).

    .venv/bin/python benchmarks/mutation_score.py [--list] [-k SUBSTRING ...] [--jobs N] [--skip-baseline]
    .venv/bin/python benchmarks/mutation_score.py --python [--only src/tgi_nix/generate/validate.py ...]
        [--tests tests/test_validate_verify.py ...] [--select PYTEST_K] [--mutants NAME|PATTERN ...]
        [--diffs FILE] [--jobs N]

--python runs mutmut (pip install mutmut into .venv) over the Python product code instead, in a copy
of the checkout (mutmut writes mutants/ beside the sources): spec/, the nix bridge, validate, doctor
and probe by default, with the non-VM tests that exercise them. Slow (doctor alone has ~1500 mutants):
run one module with its own test files; --mutants reruns a previous run's survivors or a sample
('tgi_nix.ops.*__mutmut_*0', every tenth). Survivors no test can tell from the original are listed
as equivalent with the reason (EQUIVALENT below) and left out of the score; --diffs writes every
survivor's diff. Last measured (2 December 2026; details in docs/design.md, "What the tests catch"):
Nix core 126/126 caught; Python, killed of the mutants not equivalent: spec/ 365/367 (99.5 %), the
nix bridge 242/242, validate 258/259 (99.6 %), doctor 125/125 and probe 54/54 (every tenth mutant).

Mutations: every sandboxing directive in core/hardening.nix (dropped, and a boolean flipped), every
container hardening flag, the CAP_NET_BIND_SERVICE condition, the health-on-failure action, the
firewall ports, every rule in core/rules.nix (disabled), the instance-name and cross-instance
rules, and each finding group of core/guarantees.nix.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# A copy taken once at the start: the checkout may change while this runs.
_PRISTINE = tempfile.TemporaryDirectory(prefix="tgi-nix-mutation-base-")
MODULE = Path(_PRISTINE.name) / "huggingface-tgi"
shutil.copytree(REPO / "modules" / "huggingface-tgi", MODULE, symlinks=True)
# The checkout's .venv, else the environment this script runs in (a worktree sharing a venv).
BIN = REPO / ".venv" / "bin" if (REPO / ".venv" / "bin").is_dir() else Path(sys.executable).parent
PYTEST = BIN / "pytest"
TESTS = [
    "tests/test_invariants.py",
    "tests/test_core_rules.py",
    "tests/test_core.py",
    "tests/test_schema.py",
    "tests/test_guarantees.py",
    "tests/test_tgi_releases.py",
]
# test_guarantees' module verdicts evaluate real NixOS (nixos-eval) from the checkout, not the copy.
SELECT = "not module_verdict"


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str  # relative to modules/huggingface-tgi
    edits: tuple[tuple[str, str], ...]  # (old, new), each old must occur exactly once


def one(name: str, file: str, old: str, new: str) -> Mutation:
    return Mutation(name, file, ((old, new),))


def hardening_mutations() -> list[Mutation]:
    text = (MODULE / "core" / "hardening.nix").read_text()
    found: list[Mutation] = []
    block = "?"
    offset = 0
    for line in text.split("\n"):
        # Anchored by everything before the line, so that a line repeated in another block
        # (NoNewPrivileges = true;) is mutated in this block only.
        prefix = text[:offset]
        offset += len(line) + 1
        head = re.match(r"^  (\w+) =", line)
        if head:
            block = head.group(1)
        single = re.match(r"^ {4,6}([A-Z]\w+) = (.+);$", line)
        if single:
            key, value = single.groups()
            found.append(one(f"hardening.{block}: drop {key}", "core/hardening.nix", prefix + line + "\n", prefix))
            flipped = {"true": "false", "false": "true"}.get(value)
            if flipped:
                found.append(one(f"hardening.{block}: {key} = {flipped}", "core/hardening.nix", prefix + line,
                                 prefix + line.replace(f"= {value};", f"= {flipped};")))
    for flag in re.findall(r'^    "(--[^"]+)"$', text.split("container = [")[1].split("];")[0], re.M):
        found.append(one(f"container flag: drop {flag}", "core/hardening.nix", f'    "{flag}"\n', ""))
    for path in ("/var/lib/containers", "/run", "/var/tmp", "-/etc/containers/networks"):
        old = f'        "{path}"\n'
        if text.count(old) == 1:
            found.append(one(f"hardening.rootful: ReadWritePaths drops {path}", "core/hardening.nix", old, ""))
    found += [
        one("hardening.rootful: never CAP_NET_BIND_SERVICE", "core/hardening.nix",
            '++ optional (port < 1024) "CAP_NET_BIND_SERVICE"', ""),
        one("hardening.rootful: CAP_NET_BIND_SERVICE always", "core/hardening.nix",
            "optional (port < 1024)", "optional true"),
        one("hardening.rootful: CAP_NET_BIND_SERVICE below 80 only", "core/hardening.nix",
            "optional (port < 1024)", "optional (port < 80)"),
        one("hardening.rootful: CAP_SYS_MODULE added", "core/hardening.nix",
            'CAP_SYS_ADMIN CAP_NET_ADMIN', 'CAP_SYS_MODULE CAP_SYS_ADMIN CAP_NET_ADMIN'),
        one("hardening.rootful: GPU devices always", "core/hardening.nix",
            "DeviceAllow = optionals gpu nvidiaDevices;", "DeviceAllow = nvidiaDevices;"),
        one("hardening.rootless: GPU devices never", "core/hardening.nix",
            '[ "/dev/net/tun rw" ] ++ optionals gpu nvidiaDevices', '[ "/dev/net/tun rw" ]'),
        one("hardening.rootless: no /dev/net/tun", "core/hardening.nix",
            '[ "/dev/net/tun rw" ] ++ optionals gpu nvidiaDevices', "optionals gpu nvidiaDevices"),
        one("hardening.rootless: capabilities kept", "core/hardening.nix",
            'CapabilityBoundingSet = "";', 'CapabilityBoundingSet = "CAP_SYS_ADMIN";'),
        one("hardening.common: SystemCallFilter drops @raw-io", "core/hardening.nix", " @raw-io", ""),
        one("hardening.common: AF_PACKET allowed", "core/hardening.nix", "AF_INET6 AF_NETLINK\"", "AF_INET6 AF_NETLINK AF_PACKET\""),
        one("hardening.rootful: cache dir not writable", "core/hardening.nix",
            "        cacheDir\n      ];\n      ProtectHome = true;", "      ];\n      ProtectHome = true;"),
    ]
    return found


def rule_mutations() -> list[Mutation]:
    text = (MODULE / "core" / "rules.nix").read_text()
    helper = "  rule = option: message: { inherit option message; };\n"
    off = helper + "  ruleOff = option: message: { inherit option; message = null; };\n"
    found = []
    warnings_at = text.index("warnings =")
    seen: dict[str, int] = {}
    for match in re.finditer(r'\(rule "(\w+)" \(', text):
        option = match.group(1)
        section = "warning" if match.start() > warnings_at else "rule"
        seen[f"{section}.{option}"] = seen.get(f"{section}.{option}", 0) + 1
        nth = seen[f"{section}.{option}"]
        # Anchored at this occurrence (an option may have several rules or warnings).
        prefix = text[: match.start()]
        found.append(Mutation(
            f"rules.{section}: {option} disabled" + (f" (#{nth})" if nth > 1 else ""), "core/rules.nix",
            ((prefix + match.group(0), prefix + f'(ruleOff "{option}" ('), (helper, off)),
        ))
    found += [
        one("rules: instance name rule disabled", "core/rules.nix",
            "optional (match instanceNameRe name == null)", "optional false"),
        one("rules: duplicate ports allowed", "core/rules.nix", 'clashes "port" (i: i.port)', 'clashes "port" (i: null)'),
        one("rules: duplicate users allowed", "core/rules.nix", 'clashes "user" (i: i.user)', 'clashes "user" (i: null)'),
        one("rules: duplicate uids allowed", "core/rules.nix", 'clashes "uid" (i: i.uid)', 'clashes "uid" (i: null)'),
        one("rules: store paths allowed for secrets", "core/rules.nix",
            "else if !allowStore && (value", "else if false && (value"),
        one("rules: relative paths allowed", "core/rules.nix",
            'if !hasPrefix "/" value then', "if false then"),
        one("rules: secret names not recognised", "core/rules.nix",
            'match "(.*_)?(TOKEN|SECRET|PASSWORD|API_KEY)" (upper n) != null', "false"),
    ]
    return found


def guarantee_mutations() -> list[Mutation]:
    final = "filter (f: f != null) (launcherFindings ++ podmanFindings ++ envFindings) ++ secretFindings"
    found = [
        one(f"guarantees: {group} dropped", "core/guarantees.nix", final,
            final.replace(f" ++ {group}", "").replace(f"({group} ++ ", "("))
        for group in ("launcherFindings", "podmanFindings", "envFindings", "secretFindings")
    ]
    found += [
        one("guarantees: unsafe podman flags always allowed", "core/guarantees.nix",
            "else if unsafe != null && !inst.allowUnsafePodmanArgs then", "else if false then"),
        one("guarantees: managed podman flags allowed", "core/guarantees.nix",
            "else if managed != null then", "else if false then"),
        one("guarantees: managed env allowed", "core/guarantees.nix",
            "else if managedEnv ? ${key} then", "else if false then"),
        one("guarantees: secret env names allowed", "core/guarantees.nix",
            "if rules.isSecretName key then", "if false then"),
    ]
    return found


def other_mutations() -> list[Mutation]:
    return [
        one("podman: health-on-failure none", "core/podman.nix", 'onFailure = "kill";', 'onFailure = "none";'),
        one("network: firewall ports dropped", "core/network.nix",
            "firewallPorts = if openFirewall then [ port ] else [ ];", "firewallPorts = [ ];"),
        one("network: firewall always open", "core/network.nix",
            "firewallPorts = if openFirewall then [ port ] else [ ];", "firewallPorts = [ port ];"),
        one("core: host firewall ports dropped", "core/default.nix",
            "firewallPorts = unique (concatMap (f: f.network.firewallPorts) all);", "firewallPorts = [ ];"),
    ]


def mutations() -> list[Mutation]:
    return hardening_mutations() + rule_mutations() + guarantee_mutations() + other_mutations()


def apply(root: Path, mutation: Mutation) -> None:
    path = root / "modules" / "huggingface-tgi" / mutation.file
    text = path.read_text()
    for old, new in mutation.edits:
        count = text.count(old)
        if count != 1:
            raise SystemExit(f"mutation {mutation.name!r}: {old[-80:]!r} occurs {count} times in {mutation.file}")
        text = text.replace(old, new)
    path.write_text(text)


def run(mutation: Mutation) -> tuple[Mutation, bool, float, str]:
    with tempfile.TemporaryDirectory(prefix="tgi-nix-mutant-") as tmp:
        root = Path(tmp)
        shutil.copytree(MODULE, root / "modules" / "huggingface-tgi", symlinks=True)
        shutil.copy(REPO / "flake.nix", root / "flake.nix")
        apply(root, mutation)
        start = time.monotonic()
        proc = subprocess.run(
            [str(PYTEST), "-q", "-x", "-p", "no:cacheprovider", "-k", SELECT, *TESTS],
            cwd=REPO / "python", capture_output=True, text=True, check=False,
            env={**os.environ, "TGI_NIX_ROOT": str(root)},
        )
        failed = [line for line in proc.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
        return mutation, proc.returncode != 0, time.monotonic() - start, (failed or [""])[0]


PY_ONLY = [
    "src/tgi_nix/spec/*",
    "src/tgi_nix/nix/bridge.py",
    "src/tgi_nix/generate/validate.py",
    "src/tgi_nix/ops/doctor.py",
    "src/tgi_nix/ops/probe.py",
]
PY_TESTS = [
    "tests/test_schema.py",
    "tests/test_core_rules.py",
    "tests/test_failure_paths.py",
    "tests/test_scenarios_static.py",
    "tests/test_doctor.py",
    "tests/test_probe.py",
    "tests/test_core.py",
    "tests/test_cli.py",
]


# Mutants no test can tell from the original, with the reason: (function, text) -> why. `text` is
# found in a line the mutant adds, or, written "-text", in a line it removes; matched against
# `mutmut show`'s diff, so the list holds when line numbers move.
_TEMP_NAME = "the name of a temporary file or directory that no output shows (explain strips the directory)"
_UNIT_PATH = ("not observable with systemd-analyze 252: the units named on its command line resolve each other's "
              "Requires= without SYSTEMD_UNIT_PATH")
_KEY_REASON = ("every BadKeyFile doctor can meet names the file first ('<path>: ...'; an empty first line "
               "fails before read_api_key)")
_KEY_SPLIT = "BadKeyFile's reasons hold no ': ', so every split of '<path>: <reason>' at ': ' ends in the reason"
_CDI_ROWS = "_group_devices rebuilds every device row as check 'cdi', whatever the row said"
_LSTRIP = "the text starts with a newline or '#' or '[': stripping other characters changes nothing"
_JSON_DUMP = "every option's value is a JSON type already: any dump mode gives the same dict"
_CLOCK = "a wall-clock reading off by a thousandth, or equal to the deadline to the nanosecond: no test can pin it"
_NO_OPTIONS = "a key the table does not list gets no '(set by ...)' whether its options are [] or None"
_TEXT_PRINT = "rich highlights str, never a Text, so highlight= changes nothing here"
_ALWAYS_GIVEN = "both callers pass the source, so the default is never used"
EQUIVALENT: dict[tuple[str, str], str] = {
    ("validate.x_verify_units", "check=None"): "check=None is falsy like check=False: neither raises on a status",
    ("validate.x_verify_units", "-check=False,"): "check defaults to False",
    ("validate.x_systemd_version", "check=None"): "check=None is falsy like check=False: neither raises on a status",
    ("validate.x_systemd_version", "text=True, )"): "check defaults to False",
    ("validate.x_verify_units", "explained = None"): "None is falsy like False",
    ("validate.x_verify_units", 'line.rsplit(": ", 2)[-1]'): "the last field is the same whichever the split count",
    ("validate.x_verify_units", 'line.rsplit(": ", )[-1]'): "the last field is the same whichever the split count",
    ("validate.x_verify_units", 'line.rsplit(": ", 1)[+1]'): "[+1] of a split in two is its last field, [-1]",
    ("validate.x_verify_units", "env=None"): _UNIT_PATH,
    ("validate.x_verify_units", "-env={**os.environ"): _UNIT_PATH,
    ("validate.x_verify_units", '"XXSYSTEMD_UNIT_PATHXX"'): _UNIT_PATH,
    ("validate.x_verify_units", '"systemd_unit_path"'): _UNIT_PATH,
    ("validate.x_validate", "TemporaryDirectory(prefix=None)"): _TEMP_NAME,
    ("validate.x_validate", '"XXtgi-nix-validate-XX"'): _TEMP_NAME,
    ("validate.x_validate", '"TGI-NIX-VALIDATE-"'): _TEMP_NAME,
    ("validate.x_validate", '"XXhuggingface-tgi-instances.nixXX"'): _TEMP_NAME,
    ("validate.x_validate", '"HUGGINGFACE-TGI-INSTANCES.NIX"'): _TEMP_NAME,
    ("validate.x_validate", '"XXunitsXX"'): _TEMP_NAME,
    ("validate.x_validate", '"UNITS"'): _TEMP_NAME,
    ("loader.x__clean_loc", '"XXfunction-XX"'):
        "every pydantic tag that starts with function- also holds a '[', which the other test removes",
    ("loader.x__clean_loc", '"FUNCTION-"'):
        "every pydantic tag that starts with function- also holds a '[', which the other test removes",
    ("loader.x__explain", "if (loc) or True else"): "an unknown key always has a location",
    ("loader.x__explain", 'if loc else "XX?XX"'): "an unknown key always has a location",
    ("loader.x__explain", "get_close_matches(key, keys, n=2)"): "only the closest match is shown",
    ("bridge.x__nul_paths", '"XX\\x00XX" not in key'): "an identifier never holds a NUL character",
    ("doctor.x_run_command", "check=None"): "check=None is falsy like check=False: neither raises on a status",
    ("doctor.x_run_command", "timeout=30, )"): "check defaults to False",
    ("doctor.x_check_api_key_file", 'if (": " in str(err)) or True'): _KEY_REASON,
    ("doctor.x_check_api_key_file", "else str(None)"): _KEY_REASON,
    ("doctor.x_check_api_key_file", 'str(err).split(": ", )[-1]'): _KEY_SPLIT,
    ("doctor.x_check_api_key_file", 'str(err).rsplit(": ", 1)[-1]'): _KEY_SPLIT,
    ("doctor.x_check_api_key_file", 'str(err).split(": ", 2)[-1]'): _KEY_SPLIT,
    ("doctor.x_check_api_key_file", 'str(err).split(": ", 1)[+1]'): _KEY_SPLIT,
    ("validate.x_explain", "_unit_key_options().get(key, None)"): _NO_OPTIONS,
    ("validate.x_explain", "_unit_key_options().get(key, )"): _NO_OPTIONS,
    ("doctor.x_check_cdi", '"XXcdiXX", subject'): _CDI_ROWS,
    ("doctor.x_check_cdi", '"CDI", subject'): _CDI_ROWS,
    ("doctor.x_check_cdi", '"ok", None, subject'): _CDI_ROWS,
    ("doctor.x_check_cdi", '"fail", None, subject'): _CDI_ROWS,
    ("doctor.x_check_cdi", '"warn", None, subject'): _CDI_ROWS,
    ("doctor.x__merge_alike", 'f.message.rsplit("cannot be queried: ", 1)[1]'):
        "the message says 'cannot be queried: ' once, so either split gives the reason",
    ("doctor.x_check_unit", 'line.rsplit("=", 1)'): "none of the five properties asked for holds a '=' in its value",
    ("doctor.x_listeners", 'fields[1].rpartition(":")'): "a /proc/net/tcp address has one ':', before the port",
    ("probe.xǁProberǁchat_stream", "* 1001"): _CLOCK,
    ("probe.xǁProberǁhealth", "time.monotonic() > deadline"): _CLOCK,
    ("doctor.x_cdi_spec_dirs", "if (dropins.is_dir()) or True else"): "globbing a missing directory finds nothing",
    ("doctor.x_print_table", "soft_wrap=True, highlight=True)"): _TEXT_PRINT,
    ("doctor.x_print_table", "soft_wrap=True, highlight=None)"): _TEXT_PRINT,
    ("doctor.x_print_table", "soft_wrap=True, )"): _TEXT_PRINT,
    ("doctor.x_print_table", "console.print(Text(line), "): _TEXT_PRINT,
    ("doctor.x_print_table", 'table.add_column(header, overflow=None)'):
        "every word fits its column (checked before the table is chosen), so no word overflows",
    ("doctor.x_print_table", 'table.add_column(header, )'):
        "every word fits its column (checked before the table is chosen), so no word overflows",
    ("bridge.x_run_nix", "check=None"): "check=None is falsy like check=False: neither raises on a status",
    ("bridge.x_run_nix", "-check=False,"): "check defaults to False",
    ("bridge.x__eval_core", 'source: str = "XXspecXX"'): _ALWAYS_GIVEN,
    ("bridge.x__eval_core", 'source: str = "SPEC"'): _ALWAYS_GIVEN,
    ("bridge.x__eval_core", 'payload.get("instances", None)'): "the payload always has instances (core_input)",
    ("bridge.x__eval_core", 'payload.get("instances", )'): "the payload always has instances (core_input)",
    ("bridge.x__eval_core", "TemporaryDirectory(prefix=None)"): _TEMP_NAME,
    ("bridge.x__eval_core", '"XXtgi-nix-XX"'): _TEMP_NAME,
    ("bridge.x__eval_core", '"TGI-NIX-"'): _TEMP_NAME,
    ("bridge.x__eval_core", '"XXinstances.jsonXX"'): _TEMP_NAME,
    ("bridge.x__eval_core", '"INSTANCES.JSON"'): _TEMP_NAME,
    ("loader.x_toml_value", "ensure_ascii=None"): "None is falsy like False",
    ("loader.x_spec_toml", '.lstrip(None) + "\\n"'): _LSTRIP,
    ("loader.x_spec_toml", '.lstrip("XX\\nXX") + "\\n"'): _LSTRIP,
    ("Instanceǁto_core", "model_dump(mode=None, by_alias=True)"): _JSON_DUMP,
    ("Instanceǁto_core", "model_dump(by_alias=True)"): _JSON_DUMP,
    ("Instanceǁto_core", 'model_dump(mode="XXjsonXX", by_alias=True)'): _JSON_DUMP,
    ("Instanceǁto_core", 'model_dump(mode="JSON", by_alias=True)'): _JSON_DUMP,
    ("options.x_option_docs", "if (field.examples) or True else None"): "every option has an example",
    ("options.x_option_docs", 'field.description or "XXXX"'): "every option has a description (a test checks it)",
    ("loader.x_load_spec", 'raw.decode("UTF-8")'): "Python's codec names are case-insensitive",
    ("schema.x_nix", ""): ("nix() runs once, when the schema class is defined at import, before mutmut picks a "
                           "mutant; its output is checked by `options --check` and test_option_declarations"),
    ("validate.x_validate", "render_spec_module(spec, None)"):
        "the source only names the spec in a comment of the temporary module, which is parsed and thrown away",
}


def equivalent_reason(function: str, diff: str) -> str | None:
    lines = diff.splitlines()
    added = [line[1:] for line in lines if line.startswith("+") and not line.startswith("+++")]
    removed = [line[1:] for line in lines if line.startswith("-") and not line.startswith("---")]
    for (where, text), reason in EQUIVALENT.items():
        if not function.endswith(where):
            continue
        if text.startswith("-"):
            if any(text[1:] in line for line in removed) and not any(text[1:] in line for line in added):
                return reason
        elif any(text in line for line in added):
            return reason
    return None


def mutant_diffs(mutants: Path, names: list[str]) -> dict[str, str]:
    """Each mutant's diff against the original function, read from mutmut's mutated sources (one parse
    per file; `mutmut show` takes seconds a mutant)."""
    functions: dict[Path, dict[str, str]] = {}
    diffs: dict[str, str] = {}
    for name in names:
        module, _, function = name.rpartition(".")
        while module and not (mutants / "src" / (module.replace(".", "/") + ".py")).is_file():
            module, _, outer = module.rpartition(".")  # a method: module.Class.method
            function = f"{outer}.{function}"
        path = mutants / "src" / (module.replace(".", "/") + ".py")
        if path not in functions:
            source = path.read_text() if path.is_file() else ""
            lines = source.splitlines(keepends=True)
            functions[path] = {node.name: "".join(lines[node.lineno - 1 : node.end_lineno])
                               for node in ast.walk(ast.parse(source))
                               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
        mutant = function.rpartition(".")[2]
        original = re.sub(r"__mutmut_\d+$", "__mutmut_orig", mutant)
        found = functions[path]
        diffs[name] = "".join(difflib.unified_diff(
            found.get(original, "").replace(original, "").splitlines(keepends=True),
            found.get(mutant, "").replace(mutant, "").splitlines(keepends=True), n=0))
    return diffs


# mutmut's exit codes per mutant (mutmut/stats.py), by what this benchmark reports.
_STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout",
           24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", None: "not checked"}


def mutant_statuses(mutants: Path) -> dict[str, str]:
    """Every mutant's status from mutmut's per-file results (mutants/**/*.meta)."""
    found: dict[str, str] = {}
    for meta in sorted(mutants.rglob("*.meta")):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            found[name] = _STATUS.get(code, "suspicious")
    return found


def run_mutmut(only: list[str], tests: list[str], jobs: int, diffs: Path | None, select: str,
               names: list[str]) -> int:
    mutmut = BIN / "mutmut"
    if not mutmut.exists():
        raise SystemExit("mutmut is not installed: .venv/bin/pip install mutmut")
    with tempfile.TemporaryDirectory(prefix="tgi-nix-mutmut-") as tmp:
        root = Path(tmp)
        ignore = shutil.ignore_patterns(".venv", ".git", "mutants", "__pycache__", ".mypy_cache", ".ruff_cache")
        shutil.copytree(REPO, root, symlinks=True, ignore=ignore, dirs_exist_ok=True)
        python = root / "python"
        # mutmut runs the tests from python/mutants/, whose parents[2] the tests take for the checkout.
        for name in ("examples", "modules", "docs", "flake.nix", "nixos-tests", "pkgs", "scripts", "benchmarks"):
            (python / name).symlink_to(f"../{name}")
        (python / "setup.cfg").write_text(
            "[mutmut]\nsource_paths = src/tgi_nix/\n"
            + "only_mutate =\n" + "".join(f"    {p}\n" for p in only)
            + f"pytest_add_cli_args = -p no:cacheprovider -q -m 'not vm' -k '{select}'\n"
            + "pytest_add_cli_args_test_selection =\n" + "".join(f"    {t}\n" for t in tests)
        )
        # mutmut puts its mutated copy first on sys.path; a PYTHONPATH to some checkout's sources must not win.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"TGI_NIX_ROOT": str(root)}
        started = time.monotonic()
        subprocess.run([str(mutmut), "run", "--max-children", str(jobs), *names], cwd=python, env=env,
                       stdout=subprocess.DEVNULL, check=False)
        statuses = mutant_statuses(python / "mutants")
        if names:  # only these were run (names or fnmatch patterns, as mutmut takes them): not the others
            statuses = {name: status for name, status in statuses.items()
                        if any(fnmatch.fnmatchcase(name, pattern) for pattern in names)}
        survivors = sorted(name for name, status in statuses.items() if status == "survived")
        shown = mutant_diffs(python / "mutants", survivors)
    count = {status: sum(1 for s in statuses.values() if s == status)
             for status in ("killed", "survived", "no tests", "timeout", "skipped", "not checked", "suspicious")}
    by_function: dict[str, int] = {}
    equivalent: list[tuple[str, str]] = []
    for name in survivors:
        function = re.sub(r"__mutmut_\d+$", "", name)
        reason = equivalent_reason(function, shown[name])
        if reason:
            equivalent.append((name, reason))
        else:
            by_function[function] = by_function.get(function, 0) + 1
    total = len(statuses) - count["skipped"] - count["not checked"] - len(equivalent)
    print(f"Python mutations ({', '.join(only)}{'; ' + str(len(names)) + ' named mutants' if names else ''}): "
          f"{count['killed']}/{total} killed ({100 * count['killed'] / max(total, 1):.1f} %), "
          f"{count['survived'] - len(equivalent)} survived, {len(equivalent)} equivalent (not counted), "
          f"{count['no tests']} without tests, {count['timeout']} timed out, {count['suspicious']} suspicious, "
          f"{count['not checked']} not checked; {time.monotonic() - started:.0f} s")
    modules = sorted({re.split(r"\.xǁ|\.x_", name, maxsplit=1)[0] for name in statuses})
    for module in modules if len(modules) > 1 else []:
        mine = {n: st for n, st in statuses.items() if re.split(r"\.xǁ|\.x_", n, maxsplit=1)[0] == module}
        same = sum(1 for n, _ in equivalent if n in mine)
        killed = sum(1 for st in mine.values() if st == "killed")
        counted = sum(1 for st in mine.values() if st not in ("skipped", "not checked")) - same
        print(f"  {module}: {killed}/{counted} killed ({100 * killed / max(counted, 1):.1f} %), {same} equivalent")
    for function, number in sorted(by_function.items(), key=lambda kv: -kv[1]):
        print(f"  {number:4d} survivors in {function}")
    for name, reason in equivalent:
        print(f"  equivalent: {name}: {reason}")
    if diffs is not None:
        diffs.write_text("".join(f"## {name}\n{shown[name]}\n" for name in survivors))
        print(f"survivor diffs: {diffs}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("-k", action="append", default=[], help="only mutations whose name contains this (repeatable)")
    parser.add_argument("--skip-baseline", action="store_true",
                        help="do not first check that the unmutated core passes (a run split in parts checks it once)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--python", action="store_true", help="run mutmut over the Python code instead")
    parser.add_argument("--only", nargs="+", default=PY_ONLY, help="with --python: files (globs) to mutate")
    parser.add_argument("--tests", nargs="+", default=PY_TESTS, help="with --python: the test files to run")
    parser.add_argument("--select", default=SELECT,
                        help="with --python: pytest -k expression (leave out slow property tests: 'not invariants')")
    parser.add_argument("--mutants", nargs="+", default=[],
                        help="with --python: run only these mutants: names as listed (a previous run's survivors) or "
                        "fnmatch patterns ('tgi_nix.ops.*__mutmut_*0': every tenth)")
    parser.add_argument("--diffs", type=Path, help="with --python: write each survivor's diff to this file")
    args = parser.parse_args()
    if args.python:
        return run_mutmut(args.only, args.tests, args.jobs, args.diffs, args.select, args.mutants)
    chosen = [m for m in mutations() if not args.k or any(k in m.name for k in args.k)]
    if args.list:
        print("\n".join(m.name for m in chosen))
        return 0
    # Every mutation must apply to the code as it is (a stale one would count as caught).
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(MODULE, Path(tmp) / "modules" / "huggingface-tgi", symlinks=True)
        for m in chosen:
            base = Path(tmp) / "modules" / "huggingface-tgi" / m.file
            saved = base.read_text()
            apply(Path(tmp), m)
            base.write_text(saved)
    # The unmutated copy must pass, or every mutation would count as caught.
    if not args.skip_baseline:
        _, failed, seconds, first = run(Mutation("baseline", "core/hardening.nix", ()))
        if failed:
            raise SystemExit(f"the unmutated core fails the tests ({first}); fix that first")
        print(f"baseline passes in {seconds:.1f}s", flush=True)
    survivors: list[str] = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for mutation, caught, seconds, first in pool.map(run, chosen):
            print(f"{'caught  ' if caught else 'SURVIVED'} {seconds:5.1f}s {mutation.name}"
                  + (f"  <- {first}" if caught and first else ""), flush=True)
            if not caught:
                survivors.append(mutation.name)
    total = len(chosen)
    print(f"\nNix core mutations: {total - len(survivors)}/{total} caught, {len(survivors)} survived "
          f"(tests: {' '.join(TESTS)} -k {SELECT!r})")
    for name in survivors:
        print(f"  survivor: {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
