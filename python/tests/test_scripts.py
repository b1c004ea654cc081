"""The shell scripts the units run (modules/huggingface-tgi/scripts), run for real under dash
(Debian's /bin/sh) and bash (NixOS's writeShellScript) with fake podman, mount, unshare, stat and
friends on a PATH of our own. Every fake, and every wrapper around a real tool, logs its argv, so
the tests see each command a script ran, in order. Pure subprocess tests: no tgi_nix import."""

from __future__ import annotations

import grp
import http.server
import os
import pwd
import shutil
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "modules" / "huggingface-tgi" / "scripts"
EXPECTED_SCRIPTS = {
    "fetch-image.sh",
    "copy-env-file.sh",
    "write-api-key-env.sh",
    "remove-container.sh",
    "failure-report.sh",
    "wait-ready.sh",
    "model-download.sh",
    "setup-users.sh",
}
UNIT = "huggingface-tgi-demo"
IMAGE = "ghcr.io/huggingface/text-generation-inference:3.3.7"
# Where the real tools behind the logging wrappers are looked up (not the test runner's PATH).
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LOG_ARGV = """{ printf '%s\\0' "${0##*/}" "$@"; printf '\\036'; } >> "$FAKE_LOG"\n"""
INSPECT_FORMAT = "{{.State.Pid}} {{.NetworkSettings.SandboxKey}}"
FAKE_PODMAN = """
case "$1 ${2-}" in
  "container inspect") printf '%s\\n' "${FAKE_INSPECT_OUT-}"; exit "${FAKE_INSPECT_RC:-0}" ;;
  "image exists") exit "${FAKE_EXISTS_RC:-0}" ;;
  "pull "*) exit "${FAKE_PULL_RC:-0}" ;;
  "rm "*) exit "${FAKE_RM_RC:-0}" ;;
esac
echo "fake podman: unexpected arguments: $*" >&2
exit 99
"""


def _tool(name: str) -> str:
    """A tool the tests need: skipped where it is missing, but a failure under CI."""
    path = shutil.which(name, path=SYSTEM_PATH)
    if path is None:
        message = f"{name} is not installed (Debian: apt-get install {name})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(params=["dash", "bash"])
def shell(request: pytest.FixtureRequest) -> str:
    return _tool(request.param)


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    calls: list[list[str]]

    def of(self, name: str) -> list[list[str]]:
        return [c for c in self.calls if c[0] == name]

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


class Sandbox:
    """A PATH holding only fakes and logging wrappers, and a way to run a script with it."""

    def __init__(self, tmp_path: Path, shell: str) -> None:
        self.tmp = tmp_path
        self.shell = shell
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.log = tmp_path / "argv.log"
        self.podman = self.fake("podman", FAKE_PODMAN)

    def fake(self, name: str, body: str = "exit 0\n") -> Path:
        path = self.bin / name
        path.write_text("#!/bin/sh\n" + LOG_ARGV + body)
        path.chmod(0o755)
        return path

    def wrap(self, *names: str) -> None:
        """Logging wrappers that run the real tool."""
        for name in names:
            real = shutil.which(name, path=SYSTEM_PATH)
            assert real is not None, name
            self.fake(name, f'exec {real} "$@"\n')

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        records = self.log.read_bytes().split(b"\x1e")[:-1]
        return [[arg.decode() for arg in rec.split(b"\0")[:-1]] for rec in records]

    def run(self, script: str, *args: str, stdout: int | None = None, **env: str) -> Run:
        proc = subprocess.run(
            [self.shell, str(SCRIPTS / script), *args],
            env={"PATH": str(self.bin), "FAKE_LOG": str(self.log), **env},
            stdout=subprocess.PIPE if stdout is None else stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=30,
            check=False,
        )
        return Run(proc.returncode, proc.stdout or "", proc.stderr, self.calls())


@pytest.fixture
def box(tmp_path: Path, shell: str) -> Sandbox:
    return Sandbox(tmp_path, shell)


def _me() -> tuple[str, str]:
    return pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name


# --- the folder ---------------------------------------------------------------------------------


def test_every_script_has_a_sh_shebang_a_header_and_is_executable() -> None:
    found = {p.name for p in SCRIPTS.glob("*.sh")}
    assert EXPECTED_SCRIPTS <= found
    for path in sorted(SCRIPTS.glob("*.sh")):
        lines = path.read_text().splitlines()
        # The core replaces the first line with its own shebang, a bash's (writeShellScript on
        # NixOS); the line tells shellcheck the dialect: POSIX sh, or bash where needed.
        assert lines[0] in ("#!/bin/sh", "#!/bin/bash"), path.name
        assert lines[1].startswith("# "), f"{path.name}: the comment block (what runs it, why) comes first"
        assert path.stat().st_mode & 0o111, f"{path.name} is not executable"


def test_shellcheck_is_clean() -> None:
    shellcheck = _tool("shellcheck")
    scripts = sorted(str(p) for p in SCRIPTS.glob("*.sh"))
    assert scripts
    proc = subprocess.run([shellcheck, *scripts], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- fetch-image.sh -----------------------------------------------------------------------------


def test_fetch_missing_with_the_image_present_only_checks(box: Sandbox) -> None:
    r = box.run("fetch-image.sh", str(box.podman), "missing", IMAGE, FAKE_EXISTS_RC="0")
    assert r.rc == 0
    assert r.calls == [["podman", "image", "exists", IMAGE]]


@pytest.mark.parametrize("pull_rc", [0, 125])
def test_fetch_missing_with_the_image_absent_pulls(box: Sandbox, pull_rc: int) -> None:
    r = box.run(
        "fetch-image.sh", str(box.podman), "missing", IMAGE, FAKE_EXISTS_RC="1", FAKE_PULL_RC=str(pull_rc)
    )
    assert r.calls == [["podman", "image", "exists", IMAGE], ["podman", "pull", IMAGE]]
    assert r.rc == pull_rc


def test_fetch_newer_pulls(box: Sandbox) -> None:
    r = box.run("fetch-image.sh", str(box.podman), "newer", IMAGE, FAKE_PULL_RC="0", FAKE_EXISTS_RC="1")
    assert r.rc == 0
    assert r.calls == [["podman", "pull", IMAGE]]


@pytest.mark.parametrize(("exists_rc", "rc"), [(0, 0), (1, 1)])
def test_fetch_newer_falls_back_to_the_local_copy(box: Sandbox, exists_rc: int, rc: int) -> None:
    r = box.run(
        "fetch-image.sh", str(box.podman), "newer", IMAGE, FAKE_PULL_RC="125", FAKE_EXISTS_RC=str(exists_rc)
    )
    assert r.calls == [["podman", "pull", IMAGE], ["podman", "image", "exists", IMAGE]]
    assert r.rc == rc


def test_fetch_keeps_the_image_one_argument(box: Sandbox) -> None:
    odd = "registry.example:5000/a b/$HOME:*"
    r = box.run("fetch-image.sh", str(box.podman), "missing", odd, FAKE_EXISTS_RC="1")
    assert r.rc == 0
    assert r.calls == [["podman", "image", "exists", odd], ["podman", "pull", odd]]


@pytest.mark.parametrize("policy", ["always", "never", "", "Missing", "bogus"])
def test_fetch_refuses_other_policies(box: Sandbox, policy: str) -> None:
    r = box.run("fetch-image.sh", str(box.podman), policy, IMAGE)
    assert r.rc == 2
    assert f"unknown pull policy '{policy}'" in r.stderr
    assert r.calls == []


def test_fetch_needs_all_arguments(box: Sandbox) -> None:
    r = box.run("fetch-image.sh", str(box.podman), "missing")
    assert r.rc != 0
    assert r.calls == []


# --- copy-env-file.sh ---------------------------------------------------------------------------


@pytest.mark.parametrize("install_rc", [0, 1])
def test_copy_env_file_runs_install(box: Sandbox, install_rc: int) -> None:
    box.fake("install", 'exit "${FAKE_INSTALL_RC:-0}"\n')
    src, dest = "/var/lib/secrets/tgi env", "/run/huggingface-tgi-demo/environment"
    r = box.run("copy-env-file.sh", src, dest, "tgi-demo", FAKE_INSTALL_RC=str(install_rc))
    assert r.rc == install_rc
    assert r.calls == [["install", "-m", "0400", "-o", "tgi-demo", "-g", "tgi-demo", "--", src, dest]]


def test_copy_env_file_copies_user_only(box: Sandbox) -> None:
    box.wrap("install")
    src = box.tmp / "secret env"
    src.write_text("HF_TOKEN=hf_x\n")
    src.chmod(0o600)
    dest = box.tmp / "run" / "environment"
    dest.parent.mkdir()
    user, group = _me()
    if user != group:
        pytest.skip(f"copy-env-file.sh assumes the user's group is named like the user ({user}:{group})")
    r = box.run("copy-env-file.sh", str(src), str(dest), user)
    assert r.rc == 0, r.stderr
    assert dest.read_text() == "HF_TOKEN=hf_x\n"
    st = dest.stat()
    assert stat.S_IMODE(st.st_mode) == 0o400
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())


def test_copy_env_file_fails_for_a_missing_source(box: Sandbox) -> None:
    box.wrap("install")
    user, _ = _me()
    r = box.run("copy-env-file.sh", str(box.tmp / "absent"), str(box.tmp / "dest"), user)
    assert r.rc != 0
    assert not (box.tmp / "dest").exists()


# --- write-api-key-env.sh -----------------------------------------------------------------------


def _key_box(box: Sandbox) -> tuple[Path, Path, str]:
    box.wrap("rm", "chown", "chmod")
    run_dir = box.tmp / "run"
    run_dir.mkdir()
    user, group = _me()
    return box.tmp / "api key", run_dir / "api-key", f"{user}:{group}"


def _assert_key_hidden(r: Run, key: str) -> None:
    for call in r.calls:
        for arg in call:
            assert key not in arg, f"the API key is in the argv of {call[0]}"
    assert key not in r.stdout and key not in r.stderr


@pytest.mark.parametrize(
    ("content", "key"),
    [
        (b"sk-test-123\n", "sk-test-123"),
        (b"sk-test-123", "sk-test-123"),  # no final newline
        (b"sk-test-123\nsecond line\n", "sk-test-123"),  # only the first line
        (b" spaced\\n %s $HOME `id` \n", " spaced\\n %s $HOME `id` "),  # kept byte for byte
    ],
)
def test_api_key_env_is_written_user_only(box: Sandbox, content: bytes, key: str) -> None:
    keyfile, dest, owner = _key_box(box)
    keyfile.write_bytes(content)
    r = box.run("write-api-key-env.sh", str(keyfile), str(dest), owner, UNIT)
    assert r.rc == 0, r.stderr
    assert (r.stdout, r.stderr) == ("", "")
    assert dest.read_bytes() == b"API_KEY=" + key.encode() + b"\n"
    st = dest.stat()
    assert stat.S_IMODE(st.st_mode) == 0o400
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
    assert r.calls == [
        ["rm", "-f", "--", str(dest)],
        ["chown", "-h", "--", owner, str(dest)],
        ["chmod", "0400", "--", str(dest)],
    ]
    _assert_key_hidden(r, key)


def test_api_key_env_is_created_under_umask_077(box: Sandbox) -> None:
    """Never readable by others, not even between the write and chmod (chmod here does nothing)."""
    keyfile, dest, owner = _key_box(box)
    box.fake("chmod")
    keyfile.write_text("sk-test-123\n")
    r = box.run("write-api-key-env.sh", str(keyfile), str(dest), owner, UNIT)
    assert r.rc == 0, r.stderr
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600


@pytest.mark.parametrize("content", [None, b"", b"\n", b"\nsk-on-line-two\n"])
def test_api_key_env_refuses_a_missing_or_empty_key(box: Sandbox, content: bytes | None) -> None:
    keyfile, dest, owner = _key_box(box)
    if content is not None:
        keyfile.write_bytes(content)
    r = box.run("write-api-key-env.sh", str(keyfile), str(dest), owner, UNIT)
    assert r.rc == 1
    assert f"{UNIT}: apiKeyFile {keyfile} is missing or empty" in r.stderr.splitlines()
    assert r.stdout == ""
    assert not dest.exists()
    assert r.calls == []


def test_api_key_env_replaces_the_file_of_an_earlier_start(box: Sandbox) -> None:
    keyfile, dest, owner = _key_box(box)
    dest.write_text("API_KEY=old\n")
    dest.chmod(0o400)
    keyfile.write_text("sk-new\n")
    r = box.run("write-api-key-env.sh", str(keyfile), str(dest), owner, UNIT)
    assert r.rc == 0, r.stderr
    assert dest.read_text() == "API_KEY=sk-new\n"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o400


def test_api_key_env_does_not_write_through_a_symlink(box: Sandbox) -> None:
    """A rootless instance's runtime directory belongs to its user: a symlink planted at DEST must
    not make root overwrite, chown or chmod its target."""
    keyfile, dest, owner = _key_box(box)
    target = box.tmp / "victim"
    target.write_text("precious\n")
    target.chmod(0o644)
    dest.symlink_to(target)
    keyfile.write_text("sk-test-123\n")
    r = box.run("write-api-key-env.sh", str(keyfile), str(dest), owner, UNIT)
    assert r.rc == 0, r.stderr
    assert target.read_text() == "precious\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert not dest.is_symlink()
    assert dest.read_text() == "API_KEY=sk-test-123\n"


def test_api_key_env_refuses_a_symlink_planted_again_after_rm(box: Sandbox) -> None:
    """The race: the symlink is back between rm and the write (here rm does nothing).
    noclobber refuses to open an existing file, so root writes nothing through it."""
    keyfile, dest, owner = _key_box(box)
    box.fake("rm")
    target = box.tmp / "victim"
    target.write_text("precious\n")
    dest.symlink_to(target)
    keyfile.write_text("sk-test-123\n")
    r = box.run("write-api-key-env.sh", str(keyfile), str(dest), owner, UNIT)
    assert r.rc != 0
    assert target.read_text() == "precious\n"
    assert not {"chown", "chmod"} & set(r.names())
    _assert_key_hidden(r, "sk-test-123")


def test_api_key_env_fails_when_chown_fails(box: Sandbox) -> None:
    keyfile, dest, _ = _key_box(box)
    keyfile.write_text("sk-test-123\n")
    r = box.run("write-api-key-env.sh", str(keyfile), str(dest), "no-such-user-x:no-such-group-x", UNIT)
    assert r.rc != 0
    assert "chmod" not in r.names()
    _assert_key_hidden(r, "sk-test-123")


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_api_key_env_is_owned_by_another_user_as_root(box: Sandbox) -> None:
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    owner = f"nobody:{grp.getgrgid(nobody.pw_gid).gr_name}"
    keyfile, dest, _ = _key_box(box)
    keyfile.write_text("sk-test-123\n")
    keyfile.chmod(0o400)
    r = box.run("write-api-key-env.sh", str(keyfile), str(dest), owner, UNIT)
    assert r.rc == 0, r.stderr
    st = dest.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (nobody.pw_uid, nobody.pw_gid, 0o400)


# --- remove-container.sh ------------------------------------------------------------------------

CID = "0123456789abcdef" * 4


def _rm_box(box: Sandbox, cid: str | None = CID) -> tuple[Path, Path]:
    box.wrap("cat", "grep")
    box.fake("stat", 'printf "%s\\n" "${FAKE_STAT_TYPE:-tmpfs}"\n')
    box.fake("mount", 'exit "${FAKE_MOUNT_RC:-0}"\n')
    box.fake("unshare", 'exit "${FAKE_UNSHARE_RC:-0}"\n')
    cidfile = box.tmp / "ctr-id"
    if cid is not None:
        cidfile.write_text(cid)
    netns = box.tmp / "netns" / "netns-1234"
    netns.parent.mkdir()
    netns.touch()  # what ExecStopPost's fresh mount namespace shows of the netns mount: an empty file
    return cidfile, netns


def _rm_argv(cidfile: Path) -> list[str]:
    return ["podman", "rm", "--force", "--ignore", f"--cidfile={cidfile}"]


def _inspect_argv(cid: str = CID) -> list[str]:
    return ["podman", "container", "inspect", "--format", INSPECT_FORMAT, cid]


def _reattached(cid: str = CID) -> str:
    return f"{UNIT}: re-attached the network namespace of container {cid} to clean up after conmon died\n"


def _dead_pid() -> int:
    return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1


def _own_cgroup_cid() -> str:
    """A 'container id' found in this process's /proc/PID/cgroup: podman's cgroup paths name the
    container's id; here a line's hierarchy prefix ('0::', '4:memory:') stands in for it."""
    first = Path(f"/proc/{os.getpid()}/cgroup").read_text().splitlines()[0]
    return first.rsplit(":", 1)[0] + ":"


@pytest.mark.parametrize("rm_rc", [0, 3])
def test_remove_without_a_cidfile_just_removes(box: Sandbox, rm_rc: int) -> None:
    cidfile, _ = _rm_box(box, cid=None)
    r = box.run("remove-container.sh", str(box.podman), str(cidfile), UNIT, FAKE_RM_RC=str(rm_rc))
    assert r.rc == rm_rc
    assert r.of("podman") == [_rm_argv(cidfile)]
    assert r.calls[-1] == _rm_argv(cidfile)
    assert r.stdout == ""


def test_remove_a_container_podman_no_longer_knows(box: Sandbox) -> None:
    cidfile, _ = _rm_box(box)
    r = box.run("remove-container.sh", str(box.podman), str(cidfile), UNIT, FAKE_INSPECT_RC="125")
    assert r.rc == 0
    assert r.of("podman") == [_inspect_argv(), _rm_argv(cidfile)]
    assert not {"stat", "mount", "unshare"} & set(r.names())
    assert r.stdout == ""


@pytest.mark.parametrize("state", ["0 ", "4242 "])
def test_remove_a_container_without_a_netns(box: Sandbox, state: str) -> None:
    cidfile, _ = _rm_box(box)
    r = box.run("remove-container.sh", str(box.podman), str(cidfile), UNIT, FAKE_INSPECT_OUT=state)
    assert r.rc == 0
    assert r.of("podman") == [_inspect_argv(), _rm_argv(cidfile)]
    assert not {"stat", "mount", "unshare"} & set(r.names())


def test_remove_skips_a_netns_file_that_is_gone(box: Sandbox) -> None:
    cidfile, netns = _rm_box(box)
    netns.unlink()
    r = box.run("remove-container.sh", str(box.podman), str(cidfile), UNIT, FAKE_INSPECT_OUT=f"0 {netns}")
    assert r.rc == 0
    assert not {"stat", "mount", "unshare"} & set(r.names())
    assert r.calls[-1] == _rm_argv(cidfile)


def test_remove_leaves_a_mounted_netns_alone(box: Sandbox) -> None:
    cidfile, netns = _rm_box(box)
    state = f"{os.getpid()} {netns}"
    r = box.run(
        "remove-container.sh",
        str(box.podman),
        str(cidfile),
        UNIT,
        FAKE_INSPECT_OUT=state,
        FAKE_STAT_TYPE="nsfs",
    )
    assert r.rc == 0
    assert r.of("stat") == [["stat", "-f", "-c", "%T", str(netns)]]
    assert not {"mount", "unshare"} & set(r.names())
    assert r.stdout == ""
    assert r.calls[-1] == _rm_argv(cidfile)


def test_remove_reattaches_the_netns_from_a_live_process_of_the_container(box: Sandbox) -> None:
    cid = _own_cgroup_cid()
    cidfile, netns = _rm_box(box, cid=cid)
    pid = os.getpid()
    r = box.run("remove-container.sh", str(box.podman), str(cidfile), UNIT, FAKE_INSPECT_OUT=f"{pid} {netns}")
    assert r.rc == 0, r.stderr
    assert r.of("grep") == [["grep", "-qs", cid, f"/proc/{pid}/cgroup"]]
    assert r.of("mount") == [["mount", "--bind", f"/proc/{pid}/ns/net", str(netns)]]
    assert "unshare" not in r.names()
    assert r.stdout == _reattached(cid)
    assert r.of("podman") == [_inspect_argv(cid), _rm_argv(cidfile)]
    assert r.calls[-1] == _rm_argv(cidfile)


@pytest.mark.parametrize("pid", ["dead", "zero", "not-in-cgroup"])
def test_remove_reattaches_a_fresh_netns_without_a_live_process(box: Sandbox, pid: str) -> None:
    cidfile, netns = _rm_box(box)
    number = {"dead": _dead_pid(), "zero": 0, "not-in-cgroup": os.getpid()}[pid]
    r = box.run(
        "remove-container.sh", str(box.podman), str(cidfile), UNIT, FAKE_INSPECT_OUT=f"{number} {netns}"
    )
    assert r.rc == 0, r.stderr
    assert r.of("unshare") == [["unshare", f"--net={netns}", "true"]]
    assert "mount" not in r.names()
    assert r.stdout == _reattached()
    assert r.calls[-1] == _rm_argv(cidfile)


@pytest.mark.parametrize("failing", ["mount", "unshare"])
def test_remove_still_removes_when_reattaching_fails(box: Sandbox, failing: str) -> None:
    cid = _own_cgroup_cid() if failing == "mount" else CID
    cidfile, netns = _rm_box(box, cid=cid)
    pid = os.getpid() if failing == "mount" else 0
    r = box.run(
        "remove-container.sh",
        str(box.podman),
        str(cidfile),
        UNIT,
        FAKE_INSPECT_OUT=f"{pid} {netns}",
        FAKE_MOUNT_RC="32",
        FAKE_UNSHARE_RC="1",
        FAKE_RM_RC="0",
    )
    assert r.rc == 0
    assert failing in r.names()
    assert r.stdout == ""  # no claim of a re-attach that did not happen
    assert r.calls[-1] == _rm_argv(cidfile)


# --- failure-report.sh --------------------------------------------------------------------------


def test_report_a_start_timeout(box: Sandbox) -> None:
    r = box.run("failure-report.sh", UNIT, "1h", SERVICE_RESULT="timeout")
    assert (r.rc, r.stderr) == (0, "")
    assert r.stdout == (
        f"{UNIT}: not healthy within startTimeout (1h); see the container's log lines above;"
        " raise startTimeout if loading (with downloadModel = false: TGI's own download too) needs longer\n"
    )


@pytest.mark.parametrize(
    ("result", "status"), [("exit-code", "1"), ("signal", "KILL"), ("core-dump", "SEGV")]
)
def test_report_a_stopped_container(box: Sandbox, result: str, status: str) -> None:
    r = box.run("failure-report.sh", UNIT, "1h", SERVICE_RESULT=result, EXIT_STATUS=status)
    assert (r.rc, r.stderr) == (0, "")
    assert r.stdout == f"{UNIT}: container stopped ({result}, status {status}); see the lines above\n"


def test_report_without_an_exit_status(box: Sandbox) -> None:
    r = box.run("failure-report.sh", UNIT, "1h", SERVICE_RESULT="exit-code")
    assert (r.rc, r.stderr) == (0, "")
    assert r.stdout == f"{UNIT}: container stopped (exit-code, status ); see the lines above\n"


@pytest.mark.parametrize("result", [None, "success", "start-limit-hit", "oom-kill", "watchdog"])
def test_report_nothing_otherwise(box: Sandbox, result: str | None) -> None:
    env = {} if result is None else {"SERVICE_RESULT": result, "EXIT_STATUS": "0"}
    r = box.run("failure-report.sh", UNIT, "1h", **env)
    assert (r.rc, r.stdout, r.stderr) == (0, "", "")


def test_report_exits_0_even_when_it_cannot_write(box: Sandbox) -> None:
    with Path("/dev/full").open("w") as full:
        r = box.run("failure-report.sh", UNIT, "1h", stdout=full.fileno(), SERVICE_RESULT="timeout")
    assert r.rc == 0
    assert r.calls == []


# --- wait-ready.sh (ExecStartPost= of the main unit: readiness seen from the host) ------------


class _Health:
    """A real HTTP server on a free port whose /health answers what `codes` says, in turn (the
    last one repeats); `None` closes the port (TGI's port is closed while it downloads and loads)."""

    def __init__(self, family: int = socket.AF_INET, host: str = "127.0.0.1") -> None:
        self.host, self.family = host, family
        probe = socket.socket(family)
        probe.bind((host, 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.server: http.server.HTTPServer | None = None
        self.seen: list[str] = []

    def serve(self, code: int) -> None:
        seen = self.seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                seen.append(self.path)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        family = self.family

        class Server(http.server.HTTPServer):
            address_family = family

        self.server = Server((self.host, self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def _wait_ready(
    host: str, port: int, mainpid: int | None, timeout: float = 20, podman: list[str] | None = None
) -> subprocess.Popen[str]:
    env = {"PATH": SYSTEM_PATH}  # no systemd-notify socket: STATUS= is best effort
    if mainpid is not None:
        env["MAINPID"] = str(mainpid)
    return subprocess.Popen(
        [_tool("bash"), str(SCRIPTS / "wait-ready.sh"), host, str(port), UNIT, *(podman or [])],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.fixture
def mainpid() -> Iterator[int]:
    """A stand-in for conmon: the unit's main process while the container runs."""
    proc = subprocess.Popen(["sleep", "600"])
    yield proc.pid
    proc.kill()
    proc.wait()


def test_wait_ready_waits_through_a_closed_port_and_503_and_succeeds_on_200(mainpid: int) -> None:
    health = _Health()
    proc = _wait_ready("127.0.0.1", health.port, mainpid)
    try:
        time.sleep(1.0)  # port closed: loading
        assert proc.poll() is None
        health.serve(503)  # open but not ready
        deadline = time.monotonic() + 10
        while not health.seen and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.6)
        assert proc.poll() is None, "a 503 is not ready"
        polls_503 = len(health.seen)
        assert polls_503 >= 2  # polled again within 0.25 s rounds, not once in a long while
        health.stop()
        health.serve(200)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
        health.stop()
    assert proc.returncode == 0, err
    assert set(health.seen) == {"/health"}
    lines = out.splitlines()
    assert lines[0] == f"{UNIT}: waiting for http://127.0.0.1:{health.port}/health: port closed (TGI downloads or loads the model)"
    assert lines[1] == f"{UNIT}: waiting for http://127.0.0.1:{health.port}/health: HTTP 503 (not ready)"
    assert lines[-1].startswith(f"{UNIT}: http://127.0.0.1:{health.port}/health answered 200 after ")


def test_wait_ready_runs_podmans_health_check_once_when_ready(mainpid: int, tmp_path: Path) -> None:
    # The hand-over to liveness: one `podman healthcheck run <container>` after the 200, none before.
    calls = tmp_path / "calls"
    fake = tmp_path / "podman"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(0o755)
    health = _Health()
    proc = _wait_ready("127.0.0.1", health.port, mainpid, podman=[str(fake), "huggingface-tgi-x"])
    try:
        time.sleep(0.8)
        assert proc.poll() is None and not calls.exists(), "no check while the server loads"
        health.serve(200)
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
        health.stop()
    assert proc.returncode == 0, err
    deadline = time.monotonic() + 5
    while not calls.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert calls.read_text() == "healthcheck run huggingface-tgi-x\n"


def test_wait_ready_reaches_an_ipv6_address(mainpid: int) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    health = _Health(socket.AF_INET6, "::1")
    health.serve(200)
    try:
        proc = _wait_ready("::1", health.port, mainpid)
        out, err = proc.communicate(timeout=10)
    finally:
        health.stop()
    assert proc.returncode == 0, err
    assert f"http://[::1]:{health.port}/health answered 200" in out


def test_wait_ready_fails_at_once_when_the_container_exits_during_start() -> None:
    health = _Health()  # never answers: the server died while loading
    conmon = subprocess.Popen(["sleep", "600"])
    proc = _wait_ready("127.0.0.1", health.port, conmon.pid)
    time.sleep(1.0)
    assert proc.poll() is None
    t0 = time.monotonic()
    conmon.kill()
    conmon.wait()
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 1
    assert time.monotonic() - t0 < 3  # within a poll round or two, not at TimeoutStartSec=
    assert err.strip() == (
        f"{UNIT}: the container exited before http://127.0.0.1:{health.port}/health answered 200 "
        "(last: closed); its output is above"
    )


def test_wait_ready_keeps_waiting_on_a_server_that_accepts_but_never_answers(mainpid: int) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    proc = _wait_ready("127.0.0.1", port, mainpid)
    try:
        time.sleep(3.0)
        assert proc.poll() is None
    finally:
        proc.kill()
        out, _ = proc.communicate()
        listener.close()
    assert f"waiting for http://127.0.0.1:{port}/health: connected, no answer within 2 s" in out
# --- model-download.sh --------------------------------------------------------------------------

MODEL = "acme/demo-model"
DOWNLOADER = [IMAGE, "download-weights", MODEL, "--extension", ".safetensors"]
# `podman run`: offline, exit FAKE_OFFLINE_RC; online, FAKE_CHUNKS chunks of 200 kB into
# FAKE_MODEL_DIR FAKE_PAUSE seconds apart, then FAKE_ONLINE_RC, or hang (FAKE_STALL) like a
# download whose connection went quiet. `rm` ends the hanging downloader.
FAKE_DOWNLOADER = """
case "$1 ${2-}" in
  "run --env=HF_HUB_OFFLINE=1") exit "${FAKE_OFFLINE_RC:-1}" ;;
  "run "*)
    mkdir -p "$FAKE_MODEL_DIR/blobs"
    i=0
    while [ "$i" -lt "${FAKE_CHUNKS:-0}" ]; do
      head -c 200000 /dev/zero > "$FAKE_MODEL_DIR/blobs/part$i.incomplete"
      i=$((i + 1))
      sleep "${FAKE_PAUSE:-0}"
    done
    [ -n "${FAKE_STALL-}" ] && exec sleep 60
    exit "${FAKE_ONLINE_RC:-0}" ;;
  "rm "*) exit 0 ;;
esac
echo "fake podman: unexpected arguments: $*" >&2
exit 99
"""


def _download_box(box: Sandbox) -> Path:
    box.podman = box.fake("podman", FAKE_DOWNLOADER)
    box.fake("systemd-notify")
    # Plain links, not logging wrappers: the downloader runs in the background while the script
    # measures, and two loggers at once would interleave their records.
    for name in ("du", "cut", "sed", "sleep", "head", "mkdir"):
        real = shutil.which(name, path=SYSTEM_PATH)
        assert real is not None, name
        (box.bin / name).symlink_to(real)
    return box.tmp / "cache" / "hub" / "models--acme--demo-model"


def _download(box: Sandbox, model_dir: Path, stall: int = 3, **env: str) -> Run:
    return box.run(
        "model-download.sh",
        str(model_dir),
        str(stall),
        "1",
        "demo",
        f"{stall}s",
        f"{UNIT}-model",
        str(box.podman),
        "run",
        f"--name={UNIT}-model",
        *DOWNLOADER,
        FAKE_MODEL_DIR=str(model_dir),
        **env,
    )


def _statuses(r: Run) -> list[str]:
    return [a for c in r.of("systemd-notify") for a in c if a.startswith("STATUS=")]


def test_download_with_a_complete_cache_runs_offline_only(box: Sandbox) -> None:
    model_dir = _download_box(box)
    r = _download(box, model_dir, FAKE_OFFLINE_RC="0")
    assert r.rc == 0, r.stderr
    assert r.of("podman") == [["podman", "run", "--env=HF_HUB_OFFLINE=1", f"--name={UNIT}-model", *DOWNLOADER]]
    assert "0 bytes fetched" in r.stdout
    assert r.of("systemd-notify")[-1][1] == "--ready"


def test_download_reports_progress_and_extends_the_timeout(box: Sandbox) -> None:
    model_dir = _download_box(box)
    r = _download(box, model_dir, FAKE_CHUNKS="3", FAKE_PAUSE="1.2")
    assert r.rc == 0, r.stderr
    # offline first, then the same words online
    assert [c[1:3] for c in r.of("podman")] == [["run", "--env=HF_HUB_OFFLINE=1"], ["run", f"--name={UNIT}-model"]]
    progress = [s for s in _statuses(r) if "MB so far, " in s]
    assert progress and all(s.startswith(f"STATUS=Downloading {MODEL}: ") and s.endswith(" MB/s") for s in progress)
    extends = [a for c in r.of("systemd-notify") for a in c if a.startswith("EXTEND_TIMEOUT_USEC=")]
    # each extension outlasts the stall timeout plus two measurements
    assert extends and all(int(a.split("=")[1]) >= (3 + 2) * 1_000_000 for a in extends)
    ready = r.of("systemd-notify")[-1]
    assert ready[1] == "--ready" and ready[2].startswith(f"STATUS={MODEL} downloaded")
    fetched = int(r.stdout.split(" bytes fetched")[0].rsplit(" ", 1)[1])
    assert fetched >= 3 * 200000


def test_download_counts_only_the_bytes_of_this_run(box: Sandbox) -> None:
    model_dir = _download_box(box)
    (model_dir / "blobs").mkdir(parents=True)
    (model_dir / "blobs" / "done").write_bytes(b"x" * 1_000_000)
    r = _download(box, model_dir, FAKE_CHUNKS="1")
    assert r.rc == 0, r.stderr
    fetched = int(r.stdout.split(" bytes fetched")[0].rsplit(" ", 1)[1])
    assert 200000 <= fetched < 1_000_000


def test_a_stalled_download_is_removed_and_fails_with_its_reason(box: Sandbox) -> None:
    model_dir = _download_box(box)
    r = _download(box, model_dir, stall=2, FAKE_CHUNKS="1", FAKE_STALL="1")
    assert r.rc == 1
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith(f"download of {MODEL} stalled: no bytes arrived for 2s (downloadStallTimeout)")
    assert line.endswith(
        "check the network to huggingface.co or raise services.huggingface-tgi.instances.demo.downloadStallTimeout"
    )
    assert ["podman", "rm", "--force", "--time=0", "--ignore", f"{UNIT}-model"] in r.of("podman")
    assert _statuses(r)[-1] == f"STATUS={line}"
    assert all(c[1] != "--ready" for c in r.of("systemd-notify"))


def test_a_failed_download_fails_the_unit_without_ready(box: Sandbox) -> None:
    model_dir = _download_box(box)
    r = _download(box, model_dir, FAKE_ONLINE_RC="1")
    assert r.rc == 1
    assert "download of acme/demo-model failed (status 1)" in r.stderr
    assert all(c[1] != "--ready" for c in r.of("systemd-notify"))


def test_download_needs_the_podman_run_words(box: Sandbox) -> None:
    model_dir = _download_box(box)
    r = box.run("model-download.sh", str(model_dir), "3", "1", "demo", "3s", "c", str(box.podman), "pull", IMAGE)
    assert r.rc == 2 and "must start with 'run'" in r.stderr
    assert r.of("podman") == []


# --- setup-users.sh (render-units' setup script) ---------------------------------------------------
# Fake account tools over a scratch passwd/group file, as shadow's would change them.
FAKE_ACCOUNTS = {
    "id": 'test "$1" = -u || exit 2; awk -F: -v n="$2" \'$1 == n { print $3; found = 1 } END { exit !found }\' "$FAKE/passwd"',
    "getent": 'awk -F: -v k="$2" \'$1 == k || $3 == k { print; found = 1 } END { exit found ? 0 : 2 }\' "$FAKE/$1"',
    "groupadd": 'printf \'%s:x:%s:\\n\' "$4" "$3" >> "$FAKE/group"',
    "useradd": 'printf \'%s:x:%s:%s::%s:%s\\n\' "${13}" "$3" "$3" "$7" "${10}" >> "$FAKE/passwd"',
    "usermod": 'case $1 in --add-subuids) f=$SETUP_USERS_SUBUID ;; *) f=$SETUP_USERS_SUBGID ;; esac\n'
               'printf \'%s:%s:%s\\n\' "$3" "${2%-*}" $(( ${2#*-} - ${2%-*} + 1 )) >> "$f"',
    "loginctl": 'touch "$SETUP_USERS_LINGER_DIR/$2"',
}


def _setup_users(tmp_path: Path, users: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run the core's setup-users.sh for a spec's users against the fake account tools."""
    fake = tmp_path / "fake"
    bin_dir = fake / "bin"
    if not bin_dir.exists():
        bin_dir.mkdir(parents=True)
        for name, body in FAKE_ACCOUNTS.items():
            tool = bin_dir / name
            tool.write_text(f"#!/bin/sh\n{LOG_ARGV}{body}\n")
            tool.chmod(0o755)
        (fake / "passwd").write_text("root:x:0:0::/root:/bin/sh\nalice:x:47481:47481::/home/alice:/bin/sh\n")
        (fake / "group").write_text("root:x:0:\n")
        (fake / "subuid").write_text("bob:100000:65536\n")
        (fake / "subgid").write_text("bob:100000:65536\n")
        (fake / "linger").mkdir()
    script = tmp_path / "setup-users.sh"
    script.write_text(f"#!/bin/bash\n{SCRIPTS.joinpath('setup-users.sh').read_text().split(chr(10), 1)[1]}\n{users}\n")
    env = {
        "PATH": f"{bin_dir}:{SYSTEM_PATH}", "FAKE": str(fake), "FAKE_LOG": str(fake / "log"),
        "SETUP_USERS_SUBUID": str(fake / "subuid"), "SETUP_USERS_SUBGID": str(fake / "subgid"),
        "SETUP_USERS_LINGER_DIR": str(fake / "linger"),
    }
    return subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, check=False), fake


def test_setup_users_creates_what_the_units_need_once(tmp_path: Path) -> None:
    from tgi_nix.nix.bridge import evaluate
    from tgi_nix.spec.loader import parse_spec

    core = evaluate(parse_spec({"instances": {"a": {"model": "o/m", "port": 8080},
                                              "b": {"model": "o/m", "port": 8081, "user": "tgi-b", "uid": 2002}}}))
    assert core.setup_users_script is not None
    call = core.setup_users_script.rstrip().splitlines()[-1]
    assert call.startswith("setup_users ")
    # alice holds 47481 (the shared user's derived uid): refused, naming the option, nothing made for it
    run, fake = _setup_users(tmp_path, call)
    assert run.returncode == 1
    assert "uid 47481 (for user huggingface-tgi) already belongs to user alice; set uid" in run.stderr
    assert "\nhuggingface-tgi:" not in (fake / "passwd").read_text()
    # the other user is made all the same: user, group, subordinate ids after bob's, lingering
    assert "tgi-b:x:2002:2002::/var/lib/huggingface-tgi/.rootless/tgi-b:/usr/sbin/nologin" in (fake / "passwd").read_text()
    assert "tgi-b:x:2002:" in (fake / "group").read_text()
    assert (fake / "subuid").read_text().splitlines()[-1] == "tgi-b:165536:65536"
    assert (fake / "subgid").read_text().splitlines()[-1] == "tgi-b:165536:65536"
    assert (fake / "linger" / "tgi-b").exists()

    # alice moved away: the shared user is made next, its ids after tgi-b's; a second run changes nothing
    (fake / "passwd").write_text((fake / "passwd").read_text().replace("alice:x:47481", "alice:x:1000"))
    run, fake = _setup_users(tmp_path, call)
    assert run.returncode == 0, run.stderr
    assert "created system user huggingface-tgi (uid 47481)" in run.stdout
    assert (fake / "subuid").read_text().splitlines()[-1] == "huggingface-tgi:231072:65536"
    (fake / "log").unlink()
    again, _ = _setup_users(tmp_path, call)
    assert again.returncode == 0 and again.stdout == ""
    changed = [c for c in (fake / "log").read_text().split("\036") if c.split("\0")[0] in
               ("groupadd", "useradd", "usermod", "loginctl")]
    assert changed == []


def test_setup_users_refuses_a_user_with_another_uid(tmp_path: Path) -> None:
    run, fake = _setup_users(tmp_path, "setup_users alice 2001 /var/lib/huggingface-tgi/.rootless/alice")
    assert run.returncode == 1
    assert "user alice exists with uid 47481, but the units were rendered for uid 2001; set uid = 47481" in run.stderr
    assert "alice" not in (fake / "subuid").read_text() and not (fake / "linger" / "alice").exists()
