"""The host checks behind `tgi-nix doctor`: token file, disk, ports, podman, CDI and units per instance.

Every file is read under `Host.root` and every command goes through `Host.run`, so tests drive the
checks with a prepared directory tree and canned command output.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import re
import shlex
import shutil
import stat
import subprocess
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..nix.bridge import user_podman_argv
from ..nix.facts import Finding as CoreFinding
from ..nix.facts import InstanceFacts, PodmanUser
from ..spec.models import known_model_size_gb
from ..spec.schema import Instance, Spec
from .keyfile import BadKeyFile, read_api_key

Level = Literal["ok", "warn", "fail"]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MIN_PODMAN = (4, 7)  # the units' health-check flags (--health-startup-*, --health-on-failure=kill)
RECOMMENDED_PODMAN = (5, 0)
PODMAN_CDI_RUN_DROPPED = (5, 5)  # stopped reading /run/cdi by default
CDI_DIRS = ("/etc/cdi", "/run/cdi")
CONTAINERS_CONFS = ("/usr/share/containers/containers.conf", "/etc/containers/containers.conf")
TCP_LISTEN = "0A"
# Processes that hold a container's published port on the host: conmon (rootful), pasta (rootless;
# Debian runs pasta.avx2; pasta is passt under another name), rootlessport (rootless with slirp4netns).
PUBLISHERS = ("conmon", "pasta", "pasta.avx2", "passt", "passt.avx2", "rootlessport")
NOT_FOUND = 127
JOURNAL_LINES = 20
_TOKEN_LINE_RE = re.compile(r"^(export\s+)?(HF_TOKEN|HUGGING_FACE_HUB_TOKEN)=(.*)$")


@dataclass(frozen=True)
class Finding:
    level: Level
    check: str
    subject: str  # an instance name, several joined by ", ", or "host"
    message: str
    fix: str = ""
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str = ""
    stderr: str = ""


Runner = Callable[[Sequence[str]], CommandResult]


def run_command(argv: Sequence[str]) -> CommandResult:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError:
        return CommandResult(NOT_FOUND, "", f"{argv[0]}: command not found")
    except subprocess.TimeoutExpired:
        return CommandResult(124, "", f"{argv[0]}: timed out")
    return CommandResult(proc.returncode, proc.stdout, proc.stderr)


@dataclass
class Host:
    """The system under inspection: a filesystem root and a way to run its commands."""

    root: Path = Path("/")
    run: Runner = run_command
    disk_free: Callable[[Path], int] = lambda path: shutil.disk_usage(path).free
    filesystem: Callable[[Path], int] = lambda path: path.stat().st_dev  # one id per filesystem
    root_uid: int = 0  # the owner a token file must have

    def path(self, host_path: str) -> Path:
        return self.root / host_path.lstrip("/")


def _version(text: str) -> tuple[int, ...] | None:
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(part) for part in match.groups() if part is not None) if match else None


def check_podman(host: Host) -> tuple[Finding, tuple[int, ...] | None]:
    result = host.run(["podman", "--version"])
    version = _version(result.stdout) if result.returncode == 0 else None
    if version is None:
        return Finding("fail", "podman", "host", "podman is not installed (or `podman --version` failed)",
                       "set virtualisation.podman.enable = true (the huggingface-tgi module does)"), None
    shown = ".".join(map(str, version))
    if version < MIN_PODMAN:
        return Finding("fail", "podman", "host", f"podman {shown} is older than 4.7, which the units' health "
                       "checks (--health-startup-*, --health-on-failure) need", "upgrade podman (NixOS 24.05+ or Debian trixie)"), version
    if version < RECOMMENDED_PODMAN:
        return Finding("warn", "podman", "host", f"podman {shown} works; 5.x is recommended",
                       "upgrade podman to 5.x"), version
    return Finding("ok", "podman", "host", f"podman {shown}"), version


def _root_only_file(host: Host, path: str, fail: Callable[[str, str], Finding], secret: str,
                    create: str) -> Finding | int:
    """The shared part of the secret-file checks: the file exists, root owns it, nobody else may read it.

    Returns the failure, or the file's permission bits."""
    file = host.path(path)
    try:
        info = file.stat()
    except FileNotFoundError:
        if file.is_symlink():
            return fail(f"is a symlink to {file.readlink()}, which does not exist", f"point it at the {secret} file")
        return fail("does not exist", f"install -D -m 0600 -o root /dev/null {path}; {create}")
    except OSError as err:
        if err.errno == errno.ELOOP:
            return fail("is a symlink loop", f"replace the link with the {secret} file itself")
        return fail(f"cannot be inspected: {err.strerror}", "run doctor as root")
    if stat.S_ISDIR(info.st_mode):
        return fail("is a directory, not a file", f"point the option at the {secret} file inside it, or replace it")
    if not stat.S_ISREG(info.st_mode):
        return fail("is not a regular file", f"replace it with a root-only {secret} file")
    if info.st_uid != host.root_uid:
        return fail(f"owned by uid {info.st_uid}, not root", f"chown root:root {path}")
    if info.st_mode & 0o077:
        return fail(f"mode {info.st_mode & 0o777:04o} lets other users read the {secret}", f"chmod 0600 {path}")
    return info.st_mode & 0o777


def _read_lines(host: Host, path: str, fail: Callable[[str, str], Finding]) -> list[str] | Finding:
    try:
        return host.path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:
        return fail(f"cannot read: {err.strerror}", "run doctor as root")


def check_token_file(host: Host, path: str, subject: str) -> Finding:
    def fail(message: str, fix: str) -> Finding:
        return Finding("fail", "token", subject, f"{path}: {message}", fix)

    mode = _root_only_file(host, path, fail, "token", "add HF_TOKEN=hf_... with an editor")
    if isinstance(mode, Finding):
        return mode
    lines = _read_lines(host, path, fail)
    if isinstance(lines, Finding):
        return lines
    # Only names and emptiness are looked at: the token itself is never shown.
    tokens = {m.group(2): m for m in (_TOKEN_LINE_RE.match(line.strip()) for line in lines) if m}
    match = tokens.get("HF_TOKEN")
    if match is None:
        if "HUGGING_FACE_HUB_TOKEN" in tokens:
            return Finding("warn", "token", subject, f"{path}: has only the legacy HUGGING_FACE_HUB_TOKEN",
                           "rename the variable to HF_TOKEN")
        return fail("has no HF_TOKEN= line", f"add a line HF_TOKEN=hf_... to {path}")
    if match.group(1):
        return fail("writes `export HF_TOKEN=`, which podman --env-file does not understand",
                    "remove `export ` from the line")
    if not match.group(3).strip().strip("'\""):
        return fail("HF_TOKEN is empty", "put your token (https://huggingface.co/settings/tokens) after HF_TOKEN=")
    return Finding("ok", "token", subject, f"{path}: root-owned, mode {mode:04o}, has HF_TOKEN")


def check_api_key_file(host: Host, path: str, subject: str) -> Finding:
    def fail(message: str, fix: str) -> Finding:
        return Finding("fail", "api-key", subject, f"{path}: {message}", fix)

    mode = _root_only_file(host, path, fail, "key", "put the API key on its first line")
    if isinstance(mode, Finding):
        return mode
    lines = _read_lines(host, path, fail)
    if isinstance(lines, Finding):
        return lines
    if not (lines or [""])[0].strip():
        return fail("its first line is empty; the unit would refuse to start", f"put the API key on the first line of {path}")
    try:
        read_api_key(host.path(path))  # what probe and clients send; never shown
    except BadKeyFile as err:
        reason = str(err).split(": ", 1)[-1] if ": " in str(err) else str(err)
        return fail(reason, f"write the key as one line of printable ASCII into {path}")
    return Finding("ok", "api-key", subject, f"{path}: root-owned, mode {mode:04o}, has a key")


def check_tokens(host: Host, instances: Mapping[str, Instance]) -> list[Finding]:
    """Each secret file once, naming every instance that uses it."""
    token_files: dict[str, list[str]] = {}
    key_files: dict[str, list[str]] = {}
    findings: list[Finding] = []
    for name, inst in instances.items():
        if inst.environment_file is not None:
            token_files.setdefault(inst.environment_file, []).append(name)
        elif not inst.model.startswith("/"):
            findings.append(Finding("warn", "token", name, "no environmentFile: only public, ungated models "
                                    "download without a token", "set environmentFile to a root-only HF_TOKEN file"))
        if inst.api_key_file is not None:
            key_files.setdefault(inst.api_key_file, []).append(name)
    findings += [check_token_file(host, path, ", ".join(names)) for path, names in token_files.items()]
    findings += [check_api_key_file(host, path, ", ".join(names)) for path, names in key_files.items()]
    return findings


def _tree_bytes(path: Path) -> int:
    # The hub cache keeps each file once under blobs/; snapshots/ only holds symlinks to them.
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _missing_gb(host: Host, model: str, cache_dir: str) -> float | None:
    """GB still to download for `model` into `cache_dir` (None: size unknown)."""
    size_gb = known_model_size_gb(model)
    if size_gb is None:
        return None
    owner, _, repo = model.partition("/")
    cached = host.path(cache_dir) / "hub" / f"models--{owner}--{repo}"
    return max(0.0, size_gb - (_tree_bytes(cached) / 1e9 if cached.is_dir() else 0.0))


def check_disks(host: Host, caches: Mapping[str, tuple[Instance, str]]) -> list[Finding]:
    """Disk space per filesystem: the models of every instance whose cacheDir is on one filesystem are
    summed and compared with its free space once (a model two instances share in one cacheDir, once).
    caches: instance name -> (options, cacheDir)."""
    findings: list[Finding] = []
    # filesystem -> [(name, cache_dir, measured_at)]
    groups: dict[int, list[tuple[str, str, Path]]] = {}
    for name, (inst, cache_dir) in caches.items():
        if inst.model.startswith("/"):
            if host.path(inst.model).exists():
                findings.append(Finding("ok", "disk", name, f"local model {inst.model} exists"))
            else:
                findings.append(Finding("fail", "disk", name, f"local model {inst.model} does not exist",
                                        "copy the weights there"))
            continue
        probe = host.path(cache_dir)
        while not probe.exists() and probe != host.root:
            probe = probe.parent
        groups.setdefault(host.filesystem(probe), []).append((name, cache_dir, probe))
    for members in groups.values():
        names = [name for name, _, _ in members]
        free_gb = host.disk_free(members[0][2]) / 1e9
        dirs = sorted({cache_dir + ("" if probe == host.path(cache_dir) else " (not created yet)")
                       for _, cache_dir, probe in members})
        where = f"{free_gb:.1f} GB free at {', '.join(dirs)}"
        needs: dict[tuple[str, str], float | None] = {}
        for name, cache_dir, _ in members:
            needs[(caches[name][0].model, cache_dir)] = _missing_gb(host, caches[name][0].model, cache_dir)
        needed_gb = sum(gb for gb in needs.values() if gb is not None)
        unknown = sorted({model for (model, _), gb in needs.items() if gb is None})
        models = ", ".join(sorted({model for model, _ in needs}))
        together = " together" if len(needs) > 1 else ""
        need = "need" if len(needs) > 1 else "needs"
        fix = "free space there or set cacheDir to a larger disk"
        subject = ", ".join(names)
        if free_gb < needed_gb:
            findings.append(Finding("fail", "disk", subject, f"{where}; {models} {need} {needed_gb:.1f} GB more{together}", fix))
        elif unknown:
            known = f"; the others need {needed_gb:.1f} GB" if len(unknown) < len(needs) else ""
            findings.append(Finding("warn", "disk", subject, f"{where}; size of {', '.join(unknown)} unknown, cannot "
                                    f"tell whether it fits{known}", "check the model's size on the Hub"))
        elif free_gb < needed_gb * 1.2:
            findings.append(Finding("warn", "disk", subject,
                                    f"{where}; {models} {need} {needed_gb:.1f} GB{together} (little headroom)", fix))
        else:
            findings.append(Finding("ok", "disk", subject, f"{where}; {models} {need} {needed_gb:.1f} GB more{together}"))
    return findings


@dataclass(frozen=True)
class Listener:
    address: IPAddress
    port: int
    inode: str


def _hex_address(text: str) -> IPAddress:
    raw = bytes.fromhex(text)
    if len(raw) == 4:
        return ipaddress.IPv4Address(raw[::-1])
    v6 = ipaddress.IPv6Address(b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4)))
    return v6.ipv4_mapped or v6


def listeners(host: Host) -> list[Listener]:
    """Listening TCP sockets from /proc/net/tcp and tcp6."""
    found: list[Listener] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = host.path(table)
        lines = path.read_text().splitlines()[1:] if path.is_file() else []
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == TCP_LISTEN:
                address, _, port = fields[1].partition(":")
                found.append(Listener(_hex_address(address), int(port, 16), fields[9]))
    return found


def _socket_owner(host: Host, inode: str) -> str | None:
    target = f"socket:[{inode}]"
    proc = host.path("/proc")
    for pid_dir in (d for d in (proc.iterdir() if proc.is_dir() else []) if d.name.isdigit()):
        try:
            if any(str(fd.readlink()) == target for fd in (pid_dir / "fd").iterdir()):
                comm = (pid_dir / "comm").read_text().strip() if (pid_dir / "comm").is_file() else "?"
                return f"pid {pid_dir.name} ({comm})"
        except OSError:
            continue
    return None


def podman_argv(facts: InstanceFacts) -> list[str]:
    """podman as the instance's podman user: root's podman does not see a rootless instance's container."""
    user = facts.podman_user
    return user_podman_argv(user) if user else ["podman"]


def _id_file(host: Host, path: str) -> dict[str, list[str]]:
    """name -> fields after the name, of a colon-separated file (/etc/passwd, /etc/subuid, ...)."""
    file = host.path(path)
    rows: dict[str, list[str]] = {}
    for line in (file.read_text(errors="replace").splitlines() if file.is_file() else []):
        name, _, rest = line.partition(":")
        rows.setdefault(name, rest.split(":"))
    return rows


def check_users(host: Host, core_instances: Mapping[str, InstanceFacts]) -> list[Finding]:
    """Each rootless user the units run as: the uid they were rendered for, subordinate ids, lingering
    (its user manager runs from boot) and a podman that runs rootless as it."""
    users: dict[str, tuple[PodmanUser, list[str]]] = {}
    for name, facts in sorted(core_instances.items()):
        if facts.podman_user is not None:
            users.setdefault(facts.podman_user.name, (facts.podman_user, []))[1].append(name)
    passwd, subuid, subgid = (_id_file(host, p) for p in ("/etc/passwd", "/etc/subuid", "/etc/subgid"))
    fix_setup = ("on NixOS: nixos-rebuild switch (the module creates it); elsewhere: run render-units' "
                 "setup-users.sh as root")
    found = []
    for user_name, (user, instances) in users.items():
        subject = ", ".join(instances)
        row = passwd.get(user_name)
        have_uid = row[1] if row and len(row) > 1 else None
        if have_uid is None:
            found.append(Finding("fail", "user", subject, f"user {user_name} does not exist", fix_setup))
            continue
        if have_uid != str(user.uid):
            found.append(Finding("fail", "user", subject, f"user {user_name} has uid {have_uid}, but the units "
                                 f"were rendered for uid {user.uid} (user@{user.uid}.service, /run/user/{user.uid})",
                                 f"set uid = {have_uid} on instances {subject} and deploy again"))
            continue
        missing = [f for f, table in (("/etc/subuid", subuid), ("/etc/subgid", subgid)) if user_name not in table]
        if missing:
            found.append(Finding("fail", "user", subject, f"user {user_name} has no subordinate ids in "
                                 f"{' and '.join(missing)}: rootless podman cannot make its user namespace",
                                 fix_setup))
            continue
        if not host.path(f"/var/lib/systemd/linger/{user_name}").exists():
            found.append(Finding("fail", "user", subject, f"user {user_name} does not linger: its systemd "
                                 "manager (podman's health checks) does not run from boot",
                                 f"loginctl enable-linger {user_name}"))
            continue
        info = host.run([*user_podman_argv(user), "info", "--format", "{{.Host.Security.Rootless}}"])
        if info.returncode != 0 or info.stdout.strip() != "true":
            reason = (info.stderr.strip().splitlines() or ["no output"])[-1]
            found.append(Finding("fail", "user", subject, f"podman does not run rootless as {user_name}: {reason}",
                                 f"run `{shlex.join(user_podman_argv(user))} info` as root to see why"))
            continue
        ids = subuid[user_name]
        found.append(Finding("ok", "user", subject, f"{user_name}: uid {user.uid}, subordinate ids from {ids[0]} "
                             f"({ids[1] if len(ids) > 1 else '?'}), lingering, podman rootless"))
    return found


def check_port(host: Host, name: str, facts: InstanceFacts, sockets: list[Listener]) -> Finding:
    port = facts.network.port
    wanted = ipaddress.ip_address(facts.network.listen_address)
    clashes = [
        s for s in sockets
        if s.port == port and (s.address.is_unspecified or wanted.is_unspecified or s.address == wanted)
    ]
    if not clashes:
        return Finding("ok", "port", name, f"nothing else listens on {wanted}:{port}")
    container = facts.container_name
    owner = _socket_owner(host, clashes[0].inode)
    # The socket of a published port belongs to conmon (rootful) or pasta (rootless); a restarting
    # unit's new container publishes the port too, so another program holding it is never ours.
    ours = owner is None or owner.split("(", 1)[-1].rstrip(")") in (*PUBLISHERS, "?")
    published = host.run([*podman_argv(facts), "port", container])
    if ours and published.returncode == 0 and re.search(rf":{port}\b", published.stdout):
        return Finding("ok", "port", name, f"port {port} is held by our container {container}")
    return Finding("fail", "port", name, f"port {port} on {clashes[0].address} is already in use by "
                   f"{owner or f'socket inode {clashes[0].inode}'}",
                   f"stop that program or choose another port for instances.{name}.port")


def _cdi_devices(data: Any) -> set[str]:
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        return set()
    devices = data.get("devices") or []
    return {f"{data['kind']}={d['name']}" for d in devices if isinstance(d, dict) and "name" in d}


def cdi_inventory(host: Host) -> tuple[dict[str, set[str]], list[str]]:
    """Device -> CDI dirs that declare it; plus the spec files that could not be parsed."""
    found: dict[str, set[str]] = {}
    broken: list[str] = []
    for cdi_dir in CDI_DIRS:
        directory = host.path(cdi_dir)
        files = sorted(directory.iterdir()) if directory.is_dir() else []
        for file in (f for f in files if f.suffix in (".json", ".yaml", ".yml")):
            try:
                text = file.read_text()
                data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
            except (OSError, ValueError, yaml.YAMLError):
                broken.append(f"{cdi_dir}/{file.name}")
                continue
            for device in _cdi_devices(data):
                found.setdefault(device, set()).add(cdi_dir)
    return found, broken


def cdi_spec_dirs(host: Host) -> list[str]:
    """`engine.cdi_spec_dirs` from containers.conf (later files override earlier ones)."""
    confs = [host.path(p) for p in CONTAINERS_CONFS]
    dropins = host.path("/etc/containers/containers.conf.d")
    confs += sorted(dropins.glob("*.conf")) if dropins.is_dir() else []
    dirs: list[str] = []
    for conf in (c for c in confs if c.is_file()):
        try:
            value = tomllib.loads(conf.read_text()).get("engine", {}).get("cdi_spec_dirs")
        except (OSError, tomllib.TOMLDecodeError):
            continue
        dirs = [str(v) for v in value] if isinstance(value, list) else dirs
    return dirs


def check_cdi(host: Host, wanted: Mapping[str, list[str]], podman: tuple[int, ...] | None) -> list[Finding]:
    if not wanted:
        return []
    inventory, broken = cdi_inventory(host)
    findings = [Finding("warn", "cdi", "host", f"cannot parse CDI spec {path}", "regenerate it") for path in broken]
    spec_dirs = cdi_spec_dirs(host)
    rows: list[Finding] = []
    for device, names in sorted(wanted.items()):
        subject = ", ".join(names)
        dirs = inventory.get(device, set())
        run_only = dirs == {"/run/cdi"} and "/run/cdi" not in spec_dirs
        if not dirs:
            fix = ("set hardware.nvidia-container-toolkit.enable and check "
                   "nvidia-container-toolkit-cdi-generator.service" if device.startswith("nvidia.com/")
                   else "install the vendor's CDI spec into /etc/cdi")
            rows.append(Finding("fail", "cdi", subject, f"{device} is in no CDI spec in /etc/cdi or /run/cdi", fix))
        elif run_only and podman and podman >= PODMAN_CDI_RUN_DROPPED:
            rows.append(Finding("warn", "cdi", subject, f"{device} is only in /run/cdi, which podman "
                                    f"{'.'.join(map(str, podman))} does not read by default",
                                    'containers.conf: [engine] cdi_spec_dirs = ["/etc/cdi", "/run/cdi"]'))
        else:
            rows.append(Finding("ok", "cdi", subject, f"{device} declared in {', '.join(sorted(dirs))}"))
    return findings + _group_devices(rows)


def _group_devices(rows: list[Finding]) -> list[Finding]:
    """One row per vendor kind and outcome: `nvidia.com/gpu=0,1 declared in /etc/cdi`, not a row per index."""
    groups: dict[tuple[Level, str, str, str], list[str]] = {}
    for row in rows:
        device, _, outcome = row.message.partition(" ")
        kind, _, name = device.partition("=")
        groups.setdefault((row.level, row.subject, f"{kind}\0{outcome}", row.fix), []).append(name)
    grouped: list[Finding] = []
    for (level, subject, kind_outcome, fix), names in groups.items():
        kind, _, outcome = kind_outcome.partition("\0")
        grouped.append(Finding(level, "cdi", subject, f"{kind}={','.join(names)} {outcome}", fix))
    return grouped


def _unit_properties(host: Host, unit: str, names: str) -> tuple[CommandResult, dict[str, str]]:
    """`systemctl show UNIT --property=NAMES`: the result (for its status and stderr) and the properties."""
    shown = host.run(["systemctl", "show", unit, f"--property={names}"])
    return shown, dict(line.split("=", 1) for line in shown.stdout.splitlines() if "=" in line)


def _journal_tail(host: Host, unit: str) -> tuple[str, ...]:
    """The unit's last JOURNAL_LINES journal lines, for a failed unit's finding."""
    journal = host.run(["journalctl", "-u", unit, "-n", str(JOURNAL_LINES), "--no-pager"])
    return tuple(journal.stdout.splitlines()[-JOURNAL_LINES:])


def check_unit(host: Host, name: str, facts: InstanceFacts) -> Finding:
    unit = facts.service_name

    def finding(level: Level, message: str, fix: str = "", details: tuple[str, ...] = ()) -> Finding:
        return Finding(level, "unit", name, f"{unit} {message}", fix, details)

    shown, props = _unit_properties(host, unit, "LoadState,ActiveState,SubState,Result,NRestarts")
    if shown.returncode != 0:
        reason = " ".join((shown.stderr.strip() or "systemctl failed").split())
        return finding("warn", f"cannot be queried: {reason}",
                       "run doctor on the host that runs the units, where `systemctl status` works (as root)")
    active = props.get("ActiveState")
    state = f"{active} ({props.get('SubState', '?')})"
    restarts = int(props.get("NRestarts") or 0)
    if props.get("LoadState") == "not-found":
        return finding("warn", "is not installed", "deploy the configuration (nixos-rebuild switch or render-units)")
    if active == "active":
        if restarts:
            return finding("warn", f"is {state} but restarted {restarts} time(s)", f"journalctl -u {unit}")
        return finding("ok", f"is {state}")
    # auto-restart: the last start failed and systemd waits to retry (Restart=on-failure) - a failure,
    # not a model still loading.
    if active == "failed" or props.get("SubState") == "auto-restart":
        fix = f"read the log below, fix the cause, then systemctl reset-failed {unit}; systemctl start {unit}"
        lines = _journal_tail(host, unit)
        retrying = f"; systemd retries it (restart {restarts})" if active != "failed" else ""
        return finding("fail", f"failed (result: {props.get('Result', '?')}){retrying}", fix, lines)
    if active == "activating" and restarts:
        # Started again after failures (Restart=on-failure): the loop, not a first load.
        fix = f"read the log below, fix the cause, then systemctl reset-failed {unit}; systemctl start {unit}"
        return finding("fail", f"failed and is being started again (restart {restarts})", fix,
                       _journal_tail(host, unit))
    if active == "activating":
        # With the model unit the weights are on disk before the server starts: loading only.
        doing = "loading the model" if facts.model.downloaded else "downloading or loading the model"
        return finding("warn", f"is {state}: {doing}", f"journalctl -fu {unit}")
    return finding("warn", f"is {state}", f"systemctl start {unit}")


# The model unit's progress line (scripts/model-download.sh): "Downloading <model>: <X> MB so far,
# <Y> MB/s", with " (nothing for <N>s)" while no byte arrives.
_PROGRESS_RE = re.compile(
    r"^Downloading (?P<model>\S+): (?P<mb>[0-9.]+) MB so far(?:, (?P<rate>[0-9.]+) MB/s)?(?: \(nothing for (?P<quiet>\d+)s\))?$"
)


def check_model_unit(host: Host, name: str, facts: InstanceFacts) -> Finding | None:
    """The model unit's download: bytes, rate and whether it stalls while it runs; the reason and the
    fix once it failed. None when there is no model unit, or nothing to say (done, or not queryable:
    the main unit's row says so)."""
    unit = facts.model_service_name
    if unit is None:
        return None
    shown, props = _unit_properties(host, unit, "LoadState,ActiveState,SubState,Result,StatusText")
    if shown.returncode != 0:
        return None
    active, status = props.get("ActiveState"), props.get("StatusText", "").strip()
    stall = facts.model.stall_timeout
    option = f"services.huggingface-tgi.instances.{name}.downloadStallTimeout"
    if props.get("LoadState") == "not-found" or active in ("active", None):
        return None
    if active == "activating":
        progress = _PROGRESS_RE.match(status)
        if progress is None:
            return Finding("warn", "model", name, f"{unit} is starting: {status or 'checking the cache'}",
                           f"journalctl -fu {unit}")
        quiet = int(progress["quiet"] or 0)
        so_far = f"{unit} is downloading {facts.model.id}: {progress['mb']} MB so far"
        if quiet:
            return Finding("warn", "model", name,
                           f"{so_far}, no bytes for {quiet}s (it fails as stalled after {stall.text})",
                           f"check the network to huggingface.co, or raise {option}")
        return Finding("ok", "model", name, f"{so_far}, {progress['rate'] or '?'} MB/s, bytes arriving",
                       f"journalctl -fu {unit}")
    if active == "failed":
        lines = _journal_tail(host, unit)
        restart = f"systemctl reset-failed {unit}; systemctl start {facts.service_name}"
        if "(downloadStallTimeout)" in status:
            fix = f"check the network to huggingface.co or raise {option}, then {restart}"
        else:
            fix = ("read the log below (a gated model needs HF_TOKEN in environmentFile; the Hub must be "
                   f"reachable), fix the cause, then {restart}")
        reason = f": {status}" if status else ""
        return Finding("fail", "model", name, f"{unit} failed (result: {props.get('Result', '?')}){reason}", fix, lines)
    return None


def spec_warnings(warnings: Sequence[CoreFinding]) -> list[Finding]:
    """The core's warnings about the spec itself (an unreleased TGI tag, a model family the pinned
    release cannot serve, shared GPUs, ...), as validate and the NixOS module show them."""
    found: list[Finding] = []
    for warning in warnings:
        parts = warning.path.split(".")
        subject = parts[1] if len(parts) > 1 else "spec"
        found.append(Finding("warn", "spec", subject, warning.message, f"review {warning.path} in the spec"))
    return found


def run_checks(
    spec: Spec, core_instances: Mapping[str, InstanceFacts], host: Host, warnings: Sequence[CoreFinding] = ()
) -> list[Finding]:
    podman, podman_version = check_podman(host)
    enabled = dict(sorted(spec.enabled().items()))
    wanted: dict[str, list[str]] = {}
    for name in enabled:
        for device in core_instances[name].devices.cdi_devices:
            wanted.setdefault(device, []).append(name)
    findings = [podman, *check_users(host, {n: core_instances[n] for n in enabled}),
                *check_cdi(host, wanted, podman_version), *check_tokens(host, enabled)]
    findings += check_disks(host, {name: (inst, core_instances[name].paths.cache_dir) for name, inst in enabled.items()})
    sockets = listeners(host)
    units: list[Finding] = []
    for name in enabled:
        facts = core_instances[name]
        findings.append(check_port(host, name, facts, sockets))
        model = check_model_unit(host, name, facts)
        units += [model] if model is not None else []
        units.append(check_unit(host, name, facts))
    return spec_warnings(warnings) + findings + _merge_alike(units)


def _merge_alike(units: list[Finding]) -> list[Finding]:
    """Units that cannot be queried for the same reason (no systemd here, say) as one row naming them all."""
    stuck = [f for f in units if "cannot be queried: " in f.message]
    reasons = {f.message.split("cannot be queried: ", 1)[1] for f in stuck}
    if len(stuck) < 2 or len(reasons) != 1:
        return units
    merged = Finding("warn", "unit", ", ".join(f.subject for f in stuck),
                     f"{len(stuck)} units cannot be queried: {reasons.pop()}", stuck[0].fix)
    return [merged, *(f for f in units if f not in stuck)]


_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def _longest_word(texts: Sequence[str]) -> int:
    return max((len(word) for text in texts for word in text.split()), default=0)


def print_table(findings: list[Finding], console: Console) -> None:
    """A table when every word (a path, a command) fits its column; else one block per finding, so
    that no path or command is ever cut in the middle (a terminal wraps a long line, copy-paste keeps it)."""
    headers = ("", "check", "instance", "finding", "what to do")
    cells = [(f.level, f.check, f.subject, f.message, f.fix) for f in findings]
    # each column: its longest word (or header) + 2 padding + 1 border; + the closing border
    needed = sum(max(_longest_word([row[i] for row in cells] + [headers[i]]), 1) + 3 for i in range(5)) + 1
    if needed <= console.width:
        table = Table()
        for header in headers:
            table.add_column(header, overflow="fold")  # words fit (checked above): wraps only between them
        for f in findings:
            table.add_row(Text(f.level, style=_STYLE[f.level]), f.check, Text(f.subject), Text(f.message),
                          Text(f.fix))
        console.print(table)
    else:
        for f in findings:
            console.print(Text.assemble((f"{f.level:<4}", _STYLE[f.level]), f"  {f.check}  {f.subject}"),
                          soft_wrap=True)
            console.print(Text(f"      {f.message}"), soft_wrap=True, highlight=False)
            if f.fix:
                console.print(Text(f"      fix: {f.fix}"), soft_wrap=True, highlight=False)
    for f in (f for f in findings if f.details):
        console.print(Text(f"last log lines of {f.subject}:", style="bold"))
        for line in f.details:
            console.print(Text(line), highlight=False)
