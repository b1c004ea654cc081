"""`tgi-nix doctor` against a prepared fake root and canned command output."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from tgi_nix.cli import main
from tgi_nix.nix.bridge import evaluate
from tgi_nix.nix.facts import CoreResult
from tgi_nix.ops import doctor
from tgi_nix.ops.doctor import CommandResult, Finding, Host, run_checks
from tgi_nix.spec.loader import parse_spec
from tgi_nix.spec.schema import Spec

TOKEN = "hf_DoNotPrintMe0123456789"
ENV_FILE = "/var/lib/huggingface-tgi/secrets.env"
DEEPSEEK = "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
GB = 10**9
NVIDIA_CDI = {"cdiVersion": "0.5.0", "kind": "nvidia.com/gpu",
              "devices": [{"name": "0"}, {"name": "1"}, {"name": "all"}], "containerEdits": {}}


class FakeRunner:
    """Canned output by command prefix; records every call."""

    def __init__(self, answers: dict[tuple[str, ...], CommandResult] | None = None) -> None:
        self.answers = {
            ("podman", "--version"): CommandResult(0, "podman version 5.4.2\n"),
            ("systemctl", "show"): CommandResult(0, "LoadState=loaded\nActiveState=active\nSubState=running\n"
                                                    "Result=success\nNRestarts=0\n"),
            ("podman", "port"): CommandResult(0, ""),
            ("journalctl",): CommandResult(0, ""),
        }
        self.answers.update(answers or {})
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        self.calls.append(list(argv))
        for size in range(len(argv), 0, -1):
            if tuple(argv[:size]) in self.answers:
                return self.answers[tuple(argv[:size])]
        return CommandResult(127, "", f"{argv[0]}: command not found")


def write(root: Path, path: str, text: str, mode: int = 0o644) -> Path:
    file = root / path.lstrip("/")
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text)
    file.chmod(mode)
    return file


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A healthy host: token file, NVIDIA CDI spec in /etc/cdi, empty socket tables."""
    base = tmp_path / "root"
    write(base, ENV_FILE, f"# token\nHF_TOKEN={TOKEN}\n", 0o600)
    write(base, "/etc/cdi/nvidia.json", json.dumps(NVIDIA_CDI))
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    write(base, "/proc/net/tcp", header)
    write(base, "/proc/net/tcp6", header)
    return base


def instance(**extra: Any) -> dict[str, Any]:
    # rootful unless a test says otherwise: the user checks have tests of their own (below)
    return {"model": DEEPSEEK, "port": 8080, "gpus": "all", "environmentFile": ENV_FILE, "rootful": True, **extra}


Check = Callable[..., list[Finding]]
_CORES: dict[str, CoreResult] = {}


def core_of(spec: Spec) -> CoreResult:
    """The core's facts for a spec, evaluated once per spec in a test run (many tests share one)."""
    key = spec.model_dump_json()
    if key not in _CORES:
        _CORES[key] = evaluate(spec)
    return _CORES[key]


@pytest.fixture
def check(root: Path) -> Check:
    def _check(instances: dict[str, dict[str, Any]] | None = None, runner: FakeRunner | None = None,
               free: int = 500 * GB, seen: list[Path] | None = None) -> list[Finding]:
        spec = parse_spec({"instances": instances or {"ds": instance()}})

        def disk_free(path: Path) -> int:
            if seen is not None:
                seen.append(path)
            return free

        host = Host(root=root, run=runner or FakeRunner(), disk_free=disk_free, root_uid=os.getuid())
        core = core_of(spec)
        return run_checks(spec, core.instances, host, core.warnings)

    return _check


def only(findings: list[Finding], check: str) -> Finding:
    found = [f for f in findings if f.check == check]
    assert len(found) == 1, found
    return found[0]


def test_healthy_host_is_all_ok(check: Check) -> None:
    findings = check()
    assert {f.check for f in findings} == {"podman", "cdi", "token", "disk", "port", "unit"}
    assert [f for f in findings if f.level != "ok"] == []
    assert "podman 5.4.2" in only(findings, "podman").message
    assert "nvidia.com/gpu=all declared in /etc/cdi" in only(findings, "cdi").message


def test_the_cores_spec_warnings_are_shown(check: Check) -> None:
    # TGI never released 2.5.1; Llama 4 needs >= 3.2.2: validate, the module and doctor say the same.
    findings = check({"scout": instance(model="meta-llama/Llama-4-Scout-17B-16E-Instruct",
                                        image="ghcr.io/huggingface/text-generation-inference:2.5.1")})
    spec = [f for f in findings if f.check == "spec"]
    assert spec and all(f.level == "warn" and f.subject == "scout" for f in spec), spec
    assert any("2.5.1" in f.message and "never released" in f.message for f in spec), spec
    (unreleased,) = [f for f in spec if "never released" in f.message]
    assert unreleased.fix == "review instances.scout.image in the spec"
    assert [f for f in check() if f.check == "spec"] == []


@pytest.mark.parametrize(
    ("content", "mode", "level", "words"),
    [
        (f"HF_TOKEN={TOKEN}\n", 0o644, "fail", "mode 0644"),
        (f"HF_TOKEN={TOKEN}\n", 0o640, "fail", "chmod 0600"),
        (f"HF_TOKEN={TOKEN}\n", 0o400, "ok", "has HF_TOKEN"),
        ("OTHER=1\n", 0o600, "fail", "no HF_TOKEN= line"),
        ("HF_TOKEN=\n", 0o600, "fail", "HF_TOKEN is empty"),
        ('HF_TOKEN=""\n', 0o600, "fail", "HF_TOKEN is empty"),
        (f"export HF_TOKEN={TOKEN}\n", 0o600, "fail", "export"),
        (f"HUGGING_FACE_HUB_TOKEN={TOKEN}\n", 0o600, "warn", "legacy"),
    ],
)
def test_token_file(check: Check, root: Path, content: str, mode: int, level: str, words: str) -> None:
    write(root, ENV_FILE, content, mode)
    finding = only(check(), "token")
    assert finding.level == level
    assert words in finding.message + finding.fix
    assert TOKEN not in repr(finding)


def test_missing_token_file_fails_with_a_create_hint(check: Check, root: Path) -> None:
    (root / ENV_FILE.lstrip("/")).unlink()
    finding = only(check(), "token")
    assert finding.level == "fail" and "does not exist" in finding.message
    # -D: the directory may be missing too
    assert "install -D -m 0600 -o root /dev/null /var/lib/huggingface-tgi/secrets.env" in finding.fix


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_token_file_not_owned_by_root_fails(check: Check, root: Path) -> None:
    os.chown(root / ENV_FILE.lstrip("/"), 4242, 4242)
    finding = only(check(), "token")
    assert finding.level == "fail" and "uid 4242" in finding.message and "chown root" in finding.fix


def test_instances_sharing_a_token_file_are_checked_once(check: Check) -> None:
    findings = check({"ds": instance(), "two": instance(port=8081)})
    assert only(findings, "token").subject == "ds, two"


def test_no_environment_file_is_a_warning(check: Check) -> None:
    finding = only(check({"ds": {"model": DEEPSEEK, "port": 8080}}), "token")
    assert finding.level == "warn" and "environmentFile" in finding.message


@pytest.mark.parametrize(("free_gb", "level"), [(10, "fail"), (16, "warn"), (100, "ok")])
def test_disk_space_against_known_model_size(check: Check, free_gb: int, level: str) -> None:
    finding = only(check(free=free_gb * GB), "disk")
    assert finding.level == level
    assert "15.2 GB" in finding.message


def test_disk_is_measured_at_the_nearest_existing_parent(check: Check, root: Path) -> None:
    seen: list[Path] = []
    (root / "var/lib").mkdir(parents=True, exist_ok=True)
    finding = only(check({"ds": instance(cacheDir="/var/lib/models/tgi/ds")}, seen=seen), "disk")
    assert seen == [root / "var/lib"]
    assert "/var/lib/models/tgi/ds" in finding.message and "not created yet" in finding.message


def test_partially_downloaded_model_needs_less(check: Check, root: Path) -> None:
    blob = root / "var/lib/huggingface-tgi/ds/hub/models--deepseek-ai--DeepSeek-R1-Distill-Qwen-7B/blobs/abc"
    blob.parent.mkdir(parents=True)
    with blob.open("wb") as handle:
        handle.truncate(10 * GB)  # sparse: counts its size without using the disk
    finding = only(check(free=6 * GB), "disk")
    assert finding.level == "warn" and "5.2 GB" in finding.message


def test_unknown_model_size_is_said(check: Check) -> None:
    finding = only(check({"x": instance(model="org/unknown")}, free=1 * GB), "disk")
    # Not "ok": doctor cannot tell whether 1 GB is enough.
    assert finding.level == "warn" and "size of org/unknown unknown" in finding.message


def test_missing_local_model_fails(check: Check) -> None:
    finding = only(check({"x": instance(model="/srv/weights")}), "disk")
    assert finding.level == "fail" and "/srv/weights" in finding.message


def listen(root: Path, table: str, local: str, inode: int, state: str = "0A") -> None:
    line = f"   0: {local} 00000000:0000 {state} 00000000:00000000 00:00000000 00000000     0        0 {inode} 1\n"
    with (root / "proc/net" / table).open("a") as handle:
        handle.write(line)


def test_port_taken_by_another_process_names_it(check: Check, root: Path) -> None:
    listen(root, "tcp", "0100007F:1F90", 31337)  # 127.0.0.1:8080
    fd_dir = root / "proc/4711/fd"
    fd_dir.mkdir(parents=True)
    (fd_dir / "3").symlink_to("socket:[31337]")
    write(root, "/proc/4711/comm", "python3\n")
    finding = only(check(), "port")
    assert finding.level == "fail"
    assert "port 8080" in finding.message and "pid 4711 (python3)" in finding.message
    assert "instances.ds.port" in finding.fix


def test_port_held_by_our_container_is_ok(check: Check, root: Path) -> None:
    listen(root, "tcp", "0100007F:1F90", 31337)
    runner = FakeRunner({("podman", "port"): CommandResult(0, "80/tcp -> 127.0.0.1:8080\n")})
    finding = only(check(runner=runner), "port")
    assert finding.level == "ok" and "our container huggingface-tgi-ds" in finding.message
    assert ["podman", "port", "huggingface-tgi-ds"] in runner.calls


def test_port_of_a_rootless_instance_is_asked_of_its_users_podman(check: Check, root: Path) -> None:
    # Root's podman does not see a rootless container (its port is held by the user's pasta).
    listen(root, "tcp", "0100007F:1F90", 31337)
    home = "/var/lib/huggingface-tgi/.rootless/tgi-ds"
    as_user = ("runuser", "-u", "tgi-ds", "--", "env", "-C", "/", f"HOME={home}", "XDG_RUNTIME_DIR=/run/user/2001",
               "podman")
    runner = FakeRunner({(*as_user, "port"): CommandResult(0, "80/tcp -> 127.0.0.1:8080\n")})
    finding = only(check({"ds": instance(user="tgi-ds", uid=2001, rootful=False)}, runner=runner), "port")
    assert finding.level == "ok" and "our container huggingface-tgi-ds" in finding.message
    assert [*as_user, "port", "huggingface-tgi-ds"] in runner.calls


@pytest.mark.parametrize(
    ("table", "local", "state", "level"),
    [
        ("tcp6", "00000000000000000000000000000000:1F90", "0A", "fail"),  # [::]:8080
        ("tcp", "00000000:1F90", "0A", "fail"),  # 0.0.0.0:8080
        ("tcp6", "0000000000000000FFFF00000100007F:1F90", "0A", "fail"),  # ::ffff:127.0.0.1
        ("tcp", "0200007F:1F90", "0A", "ok"),  # 127.0.0.2: another address
        ("tcp", "0100007F:1F91", "0A", "ok"),  # port 8081
        ("tcp", "0100007F:1F90", "01", "ok"),  # established, not listening
    ],
)
def test_port_conflict_rules(check: Check, root: Path, table: str, local: str, state: str, level: str) -> None:
    listen(root, table, local, 99, state)
    assert only(check(), "port").level == level


@pytest.mark.parametrize(
    ("answer", "level", "words"),
    [
        (CommandResult(127, "", "not found"), "fail", "not installed"),
        (CommandResult(0, "podman version 4.3.1\n"), "fail", "older than 4.7"),
        (CommandResult(0, "podman version 4.9.3\n"), "warn", "5.x is recommended"),
        (CommandResult(0, "podman version 5.6.0\n"), "ok", "podman 5.6.0"),
    ],
)
def test_podman_version(check: Check, answer: CommandResult, level: str, words: str) -> None:
    finding = only(check(runner=FakeRunner({("podman", "--version"): answer})), "podman")
    assert finding.level == level and words in finding.message


def move_cdi_to_run(root: Path) -> None:
    (root / "run/cdi").mkdir(parents=True)
    (root / "etc/cdi/nvidia.json").rename(root / "run/cdi/nvidia-container-toolkit.json")


def test_missing_cdi_device_fails(check: Check, root: Path) -> None:
    (root / "etc/cdi/nvidia.json").unlink()
    finding = only(check(), "cdi")
    assert finding.level == "fail" and "nvidia.com/gpu=all" in finding.message
    assert "nvidia-container-toolkit" in finding.fix


def test_cdi_only_in_run_warns_with_new_podman(check: Check, root: Path) -> None:
    move_cdi_to_run(root)
    runner = FakeRunner({("podman", "--version"): CommandResult(0, "podman version 5.5.1\n")})
    finding = only(check(runner=runner), "cdi")
    assert finding.level == "warn" and "cdi_spec_dirs" in finding.fix


def test_cdi_only_in_run_is_fine_with_cdi_spec_dirs_or_older_podman(check: Check, root: Path) -> None:
    move_cdi_to_run(root)
    assert only(check(), "cdi").level == "ok"  # podman 5.4 still reads /run/cdi
    write(root, "/etc/containers/containers.conf", '[engine]\ncdi_spec_dirs = ["/etc/cdi", "/run/cdi"]\n')
    runner = FakeRunner({("podman", "--version"): CommandResult(0, "podman version 5.5.1\n")})
    assert only(check(runner=runner), "cdi").level == "ok"


def test_cdi_yaml_specs_indices_and_extra_devices(check: Check, root: Path) -> None:
    (root / "etc/cdi/nvidia.json").unlink()
    write(root, "/etc/cdi/nvidia.yaml", "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: '0'\n")
    write(root, "/etc/cdi/broken.json", "{not json")
    findings = check({"ds": instance(gpus=[0, 1], cdiDevices=["amd.com/gpu=all"])})
    by_message = {f.message.split()[0]: f.level for f in findings if f.check == "cdi"}
    assert by_message == {"cannot": "warn", "amd.com/gpu=all": "fail", "nvidia.com/gpu=0": "ok",
                          "nvidia.com/gpu=1": "fail"}


def test_cpu_instance_needs_no_cdi(check: Check) -> None:
    findings = check({"cpu": {"model": "org/m", "port": 8080}})
    assert [f for f in findings if f.check == "cdi"] == []


def systemd(state: str, sub: str, result: str = "success", restarts: int = 0, load: str = "loaded") -> CommandResult:
    text = f"LoadState={load}\nActiveState={state}\nSubState={sub}\nResult={result}\nNRestarts={restarts}\n"
    return CommandResult(0, text)


def test_failed_unit_shows_last_journal_lines(check: Check) -> None:
    journal = "".join(f"line {i} [not markup]\n" for i in range(20))
    runner = FakeRunner({("systemctl", "show"): systemd("failed", "failed", "timeout"),
                         ("journalctl",): CommandResult(0, journal)})
    finding = only(check(runner=runner), "unit")
    assert finding.level == "fail" and "timeout" in finding.message
    assert finding.details == tuple(journal.splitlines())
    assert ["journalctl", "-u", "huggingface-tgi-ds.service", "-n", "20", "--no-pager"] in runner.calls


def test_unit_started_again_after_failures_is_a_failure_with_its_log(check: Check) -> None:
    runner = FakeRunner({("systemctl", "show"): systemd("activating", "start", "success", restarts=2),
                         ("journalctl",): CommandResult(0, "Error: pasta failed: Failed to bind port 8080\n")})
    unit = only(check(runner=runner), "unit")
    assert unit.level == "fail" and "failed and is being started again (restart 2)" in unit.message, unit
    assert unit.details == ("Error: pasta failed: Failed to bind port 8080",)
    # a first start (no restart yet) is loading, a warning
    runner = FakeRunner({("systemctl", "show"): systemd("activating", "start")})
    assert only(check(runner=runner), "unit").level == "warn"


def test_unit_waiting_to_restart_is_a_failure_with_its_log(check: Check) -> None:
    # Restart=on-failure: between attempts the unit is activating (auto-restart), not loading.
    runner = FakeRunner({("systemctl", "show"): systemd("activating", "auto-restart", "exit-code", restarts=2),
                         ("journalctl",): CommandResult(0, "Error: address already in use\n")})
    finding = only(check(runner=runner), "unit")
    assert finding.level == "fail" and "exit-code" in finding.message and "restart 2" in finding.message
    assert finding.details == ("Error: address already in use",)


@pytest.mark.parametrize(
    ("answer", "level", "words"),
    [
        (systemd("activating", "start"), "warn", "loading the model"),
        (systemd("inactive", "dead", load="not-found"), "warn", "not installed"),
        (systemd("active", "running", restarts=3), "warn", "restarted 3"),
        (systemd("inactive", "dead"), "warn", "inactive (dead)"),
        (CommandResult(1, "", "Failed to connect to bus"), "warn", "Failed to connect"),
    ],
)
def test_unit_states(check: Check, answer: CommandResult, level: str, words: str) -> None:
    finding = only(check(runner=FakeRunner({("systemctl", "show"): answer})), "unit")
    assert finding.level == level and words in finding.message
    assert finding.details == ()


def test_cli_json_exit_code_and_no_secret(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    runner = FakeRunner({("systemctl", "show"): systemd("failed", "failed", "exit-code"),
                         # the model unit downloaded; the server failed afterwards
                         ("systemctl", "show", "huggingface-tgi-ds-model.service"): systemd("active", "exited"),
                         ("journalctl",): CommandResult(0, "boom\n")})
    monkeypatch.setattr(doctor, "run_command", runner)
    spec = tmp_path / "spec.toml"
    spec.write_text(f'[instances.ds]\nmodel = "org/m"\nport = 8080\nrootful = true\nenvironmentFile = "{ENV_FILE}"\n')
    assert main(["doctor", str(spec), "--root", str(root), "--json"]) == 1
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["ok"] is False
    assert {f["check"]: f["level"] for f in report["findings"]}["unit"] == "fail"
    assert report["findings"][-1]["details"] == ["boom"]
    assert "1 check(s) failed" in err
    assert TOKEN not in out + err


@pytest.mark.skipif(os.geteuid() != 0, reason="the CLI wants a root-owned token file")
def test_cli_table_on_a_healthy_host_exits_zero(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(doctor, "run_command", FakeRunner())
    monkeypatch.setenv("COLUMNS", "200")
    spec = tmp_path / "spec.toml"
    spec.write_text(f'[instances.ds]\nmodel = "org/m"\nport = 8080\nrootful = true\nenvironmentFile = "{ENV_FILE}"\n')
    assert main(["doctor", str(spec), "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "huggingface-tgi-ds.service" in out and "podman 5.4.2" in out
    assert TOKEN not in out


@pytest.mark.parametrize(
    ("text", "mode", "level", "words"),
    [
        ("k3y\n", 0o600, "ok", "has a key"),
        ("k3y\n", 0o644, "fail", "chmod 0600"),
        ("\n", 0o600, "fail", "first line is empty"),
        (None, 0o600, "fail", "does not exist"),
    ],
)
def test_api_key_file(check: Check, root: Path, text: str | None, mode: int, level: str, words: str) -> None:
    key_file = "/var/lib/huggingface-tgi/api-key"
    if text is not None:
        write(root, key_file, text, mode)
    finding = only(check({"ds": instance(apiKeyFile=key_file)}), "api-key")
    assert finding.level == level and words in finding.message + finding.fix
    assert "k3y" not in finding.message + finding.fix


# ------------------------------------------------------------- what real hosts have (issue 14, item 8)
@pytest.mark.parametrize(("make", "words"), [
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: p.symlink_to(p.name), "symlink loop"),
    (lambda p: p.symlink_to("/nonexistent/token"), "symlink to /nonexistent/token, which does not exist"),
])
def test_token_path_that_is_not_a_file_says_what_it_is(
    check: Check, root: Path, make: Callable[[Path], None], words: str
) -> None:
    path = root / ENV_FILE.lstrip("/")
    path.unlink()
    make(path)
    finding = only(check(), "token")
    assert finding.level == "fail" and words in finding.message and "does not exist" not in finding.fix


@pytest.mark.parametrize(("content", "words"), [(b"\xff\xfek3y\n", "not UTF-8"), (b"k3y with space\n", "cannot carry")])
def test_api_key_file_the_units_could_not_use(check: Check, root: Path, content: bytes, words: str) -> None:
    key_file = root / "var/lib/huggingface-tgi/api-key"
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_bytes(content)
    key_file.chmod(0o600)
    finding = only(check({"ds": instance(apiKeyFile="/var/lib/huggingface-tgi/api-key")}), "api-key")
    assert finding.level == "fail" and words in finding.message
    assert "k3y" not in finding.message + finding.fix


def test_one_cdi_row_per_device_kind_not_per_index(check: Check) -> None:
    findings = [f for f in check({"ds": instance(gpus=[0, 1])}) if f.check == "cdi"]
    assert [(f.level, f.message) for f in findings] == [("ok", "nvidia.com/gpu=0,1 declared in /etc/cdi")]


def test_disk_is_summed_per_filesystem(check: Check) -> None:
    two = {"a": instance(), "b": instance(port=8081, cacheDir="/var/lib/huggingface-tgi/b2")}
    # 20 GB would do for one DeepSeek 7B (15.2 GB), not for two caches on one filesystem.
    finding = only(check(two, free=20 * GB), "disk")
    assert finding.level == "fail" and finding.subject == "a, b" and "need 30.4 GB more together" in finding.message
    # One model alone "needs" it (the doctor VM scenario greps that sentence).
    alone = only(check({"a": instance()}, free=10 * GB), "disk")
    assert alone.level == "fail" and f"{DEEPSEEK} needs 15.2 GB more" in alone.message
    assert only(check({"a": instance()}, free=20 * GB), "disk").level == "ok"


def test_disk_on_two_filesystems_is_checked_per_filesystem(root: Path) -> None:
    spec = parse_spec({"instances": {"a": instance(), "b": instance(port=8081, cacheDir="/srv/b")}})
    (root / "srv").mkdir()
    host = Host(root=root, run=FakeRunner(), disk_free=lambda p: 20 * GB, root_uid=os.getuid(),
                filesystem=lambda p: 2 if "srv" in str(p) else 1)
    disks = [f for f in run_checks(spec, evaluate(spec).instances, host) if f.check == "disk"]
    assert sorted((f.subject, f.level) for f in disks) == [("a", "ok"), ("b", "ok")]


def test_units_that_cannot_be_queried_are_one_row_with_a_next_step(check: Check) -> None:
    runner = FakeRunner({("systemctl", "show"): CommandResult(1, "", "System has not been booted with systemd\n")})
    finding = only(check({"a": instance(), "b": instance(port=8081)}, runner=runner), "unit")
    assert finding.subject == "a, b" and "cannot be queried: System has not been booted" in finding.message
    assert "run doctor on the host that runs the units" in finding.fix


@pytest.mark.parametrize("width", [60, 100, 200])
def test_output_never_cuts_a_path_or_command(check: Check, root: Path, width: int) -> None:
    from rich.console import Console

    deep = "/var/lib/secrets/huggingface-tgi/a-rather-long-directory-name/token.env"
    findings = check({"ds": instance(environmentFile=deep)})
    console = Console(width=width, record=True, soft_wrap=False, color_system=None)
    doctor.print_table(findings, console)
    text = console.export_text()
    # Every word whole (a table wraps between words only); narrow: one finding per block, commands whole.
    assert text.count(deep) == 2, text
    if "┃" not in text:
        assert f"fix: install -D -m 0600 -o root /dev/null {deep}" in text


# ------------------------------------------------ each finding as a user reads it: message and fix, exactly
def test_a_healthy_host_says_what_it_found(check: Check) -> None:
    assert check() == [
        Finding("ok", "podman", "host", "podman 5.4.2"),
        Finding("ok", "cdi", "ds", "nvidia.com/gpu=all declared in /etc/cdi"),
        Finding("ok", "token", "ds", f"{ENV_FILE}: root-owned, mode 0600, has HF_TOKEN"),
        Finding("ok", "disk", "ds", f"500.0 GB free at /var/lib/huggingface-tgi/ds (not created yet); {DEEPSEEK} "
                                    "needs 15.2 GB more"),
        Finding("ok", "port", "ds", "nothing else listens on 127.0.0.1:8080"),
        Finding("ok", "unit", "ds", "huggingface-tgi-ds.service is active (running)"),
    ]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (CommandResult(127, "", "not found"), Finding(
            "fail", "podman", "host", "podman is not installed (or `podman --version` failed)",
            "set virtualisation.podman.enable = true (the huggingface-tgi module does)")),
        (CommandResult(0, "no version here\n"), Finding(
            "fail", "podman", "host", "podman is not installed (or `podman --version` failed)",
            "set virtualisation.podman.enable = true (the huggingface-tgi module does)")),
        (CommandResult(1, "podman version 5.4.2\n"), Finding(
            "fail", "podman", "host", "podman is not installed (or `podman --version` failed)",
            "set virtualisation.podman.enable = true (the huggingface-tgi module does)")),
        (CommandResult(0, "podman version 4.6\n"), Finding(
            "fail", "podman", "host", "podman 4.6 is older than 4.7, which the units' health checks (--health-startup-*, --health-on-failure) need",
            "upgrade podman (NixOS 24.05+ or Debian trixie)")),
        (CommandResult(0, "podman version 4.7.0\n"), Finding(
            "warn", "podman", "host", "podman 4.7.0 works; 5.x is recommended", "upgrade podman to 5.x")),
        (CommandResult(0, "podman version 5.0\n"), Finding("ok", "podman", "host", "podman 5.0")),
    ],
)
def test_podman_findings(check: Check, answer: CommandResult, expected: Finding) -> None:
    assert only(check(runner=FakeRunner({("podman", "--version"): answer})), "podman") == expected


@pytest.mark.parametrize(
    ("content", "mode", "expected"),
    [
        (f"HF_TOKEN={TOKEN}\n", 0o640, ("fail", f"{ENV_FILE}: mode 0640 lets other users read the token",
                                        f"chmod 0600 {ENV_FILE}")),
        (f"HF_TOKEN={TOKEN}\n", 0o604, ("fail", f"{ENV_FILE}: mode 0604 lets other users read the token",
                                        f"chmod 0600 {ENV_FILE}")),
        (f"HF_TOKEN={TOKEN}\n", 0o400, ("ok", f"{ENV_FILE}: root-owned, mode 0400, has HF_TOKEN", "")),
        (f"  HF_TOKEN={TOKEN}  \nOTHER=1\n", 0o600, ("ok", f"{ENV_FILE}: root-owned, mode 0600, has HF_TOKEN", "")),
        ("OTHER=1\n", 0o600, ("fail", f"{ENV_FILE}: has no HF_TOKEN= line", f"add a line HF_TOKEN=hf_... to {ENV_FILE}")),
        ("HF_TOKEN=''\n", 0o600, ("fail", f"{ENV_FILE}: HF_TOKEN is empty",
                                  "put your token (https://huggingface.co/settings/tokens) after HF_TOKEN=")),
        ("HF_TOKEN=  \n", 0o600, ("fail", f"{ENV_FILE}: HF_TOKEN is empty",
                                  "put your token (https://huggingface.co/settings/tokens) after HF_TOKEN=")),
        (f"export  HF_TOKEN={TOKEN}\n", 0o600, (
            "fail", f"{ENV_FILE}: writes `export HF_TOKEN=`, which podman --env-file does not understand",
            "remove `export ` from the line")),
        (f"HUGGING_FACE_HUB_TOKEN={TOKEN}\n", 0o600, (
            "warn", f"{ENV_FILE}: has only the legacy HUGGING_FACE_HUB_TOKEN", "rename the variable to HF_TOKEN")),
        (f"HUGGING_FACE_HUB_TOKEN={TOKEN}\nHF_TOKEN={TOKEN}\n", 0o600, (
            "ok", f"{ENV_FILE}: root-owned, mode 0600, has HF_TOKEN", "")),
    ],
)
def test_token_findings(check: Check, root: Path, content: str, mode: int, expected: tuple[str, str, str]) -> None:
    write(root, ENV_FILE, content, mode)
    assert only(check(), "token") == Finding(expected[0], "token", "ds", expected[1], expected[2])  # type: ignore[arg-type]


def test_secret_paths_that_are_no_usable_file(check: Check, root: Path) -> None:
    path = root / ENV_FILE.lstrip("/")
    path.unlink()
    assert only(check(), "token") == Finding(
        "fail", "token", "ds", f"{ENV_FILE}: does not exist",
        f"install -D -m 0600 -o root /dev/null {ENV_FILE}; add HF_TOKEN=hf_... with an editor")
    path.symlink_to("/nonexistent/token")
    assert only(check(), "token") == Finding("fail", "token", "ds", f"{ENV_FILE}: is a symlink to /nonexistent/token, "
                                             "which does not exist", "point it at the token file")
    path.unlink()
    path.symlink_to(path.name)
    assert only(check(), "token") == Finding("fail", "token", "ds", f"{ENV_FILE}: is a symlink loop",
                                             "replace the link with the token file itself")
    path.unlink()
    path.mkdir()
    assert only(check(), "token") == Finding(
        "fail", "token", "ds", f"{ENV_FILE}: is a directory, not a file",
        "point the option at the token file inside it, or replace it")
    path.rmdir()
    os.mkfifo(path)
    assert only(check(), "token") == Finding("fail", "token", "ds", f"{ENV_FILE}: is not a regular file",
                                             "replace it with a root-only token file")
    path.unlink()
    write(root, ENV_FILE, "HF_TOKEN=x\n", 0o600)
    other = Host(root=root, run=FakeRunner(), disk_free=lambda p: 500 * GB, root_uid=os.getuid() + 1)
    spec = parse_spec({"instances": {"ds": instance()}})
    (token,) = [f for f in run_checks(spec, core_of(spec).instances, other) if f.check == "token"]
    assert token == Finding("fail", "token", "ds", f"{ENV_FILE}: owned by uid {os.getuid()}, not root",
                            f"chown root:root {ENV_FILE}")


def test_a_secret_path_that_cannot_be_inspected_or_read(check: Check, root: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    real_stat, real_read = Path.stat, Path.read_text

    def stat(self: Path, **kwargs: Any) -> Any:
        if self.name == "secrets.env":
            raise PermissionError(13, "Permission denied")
        return real_stat(self, **kwargs)

    monkeypatch.setattr(Path, "stat", stat)
    assert only(check(), "token") == Finding("fail", "token", "ds", f"{ENV_FILE}: cannot be inspected: Permission denied",
                                             "run doctor as root")
    monkeypatch.setattr(Path, "stat", real_stat)

    def read_text(self: Path, *args: Any, **kwargs: Any) -> str:
        if self.name == "secrets.env":
            raise PermissionError(13, "Permission denied")
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    assert only(check(), "token") == Finding("fail", "token", "ds", f"{ENV_FILE}: cannot read: Permission denied",
                                             "run doctor as root")
    write(root, "/k/secrets.env", "k3y\n", 0o600)
    assert only(check({"ds": instance(apiKeyFile="/k/secrets.env")}), "api-key") == Finding(
        "fail", "api-key", "ds", "/k/secrets.env: cannot read: Permission denied", "run doctor as root")


KEY = "/var/lib/huggingface-tgi/api-key"


@pytest.mark.parametrize(
    ("content", "mode", "expected"),
    [
        (b"k3y\n", 0o600, ("ok", f"{KEY}: root-owned, mode 0600, has a key", "")),
        (b"k3y\n", 0o660, ("fail", f"{KEY}: mode 0660 lets other users read the key", f"chmod 0600 {KEY}")),
        (b" \nk3y\n", 0o600, ("fail", f"{KEY}: its first line is empty; the unit would refuse to start",
                              f"put the API key on the first line of {KEY}")),
        (b"", 0o600, ("fail", f"{KEY}: its first line is empty; the unit would refuse to start",
                      f"put the API key on the first line of {KEY}")),
        (b"k3y with space\n", 0o600, (
            "fail", f"{KEY}: the key (its first line) holds spaces, control or non-ASCII characters, which an HTTP "
                    "Authorization header cannot carry",
            f"write the key as one line of printable ASCII into {KEY}")),
    ],
)
def test_api_key_findings(check: Check, root: Path, content: bytes, mode: int, expected: tuple[str, str, str]) -> None:
    file = root / KEY.lstrip("/")
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(content)
    file.chmod(mode)
    assert only(check({"ds": instance(apiKeyFile=KEY)}), "api-key") == Finding(
        expected[0], "api-key", "ds", expected[1], expected[2])  # type: ignore[arg-type]


def test_an_unusable_key_in_a_path_with_spaces_is_explained_after_the_path(check: Check, root: Path) -> None:
    spaced = "/var/lib/huggingface-tgi/my key"
    write(root, spaced, "k3y with space\n", 0o600)
    assert only(check({"ds": instance(apiKeyFile=spaced)}), "api-key").message == (
        f"{spaced}: the key (its first line) holds spaces, control or non-ASCII characters, which an HTTP "
        "Authorization header cannot carry")


def test_missing_api_key_file_says_how_to_create_it(check: Check) -> None:
    assert only(check({"ds": instance(apiKeyFile=KEY)}), "api-key") == Finding(
        "fail", "api-key", "ds", f"{KEY}: does not exist",
        f"install -D -m 0600 -o root /dev/null {KEY}; put the API key on its first line")


def test_no_token_file_warns_only_for_hub_models(check: Check, root: Path) -> None:
    (root / "srv/w").mkdir(parents=True)
    findings = check({"hub": {"model": DEEPSEEK, "port": 8080}, "local": {"model": "/srv/w", "port": 8081}})
    assert [f for f in findings if f.check == "token"] == [Finding(
        "warn", "token", "hub", "no environmentFile: only public, ungated models download without a token",
        "set environmentFile to a root-only HF_TOKEN file")]
    assert [f for f in findings if f.check == "disk" and f.subject == "local"] == [
        Finding("ok", "disk", "local", "local model /srv/w exists")]


def test_disk_findings(check: Check, root: Path) -> None:
    fix = "free space there or set cacheDir to a larger disk"
    where = "/var/lib/huggingface-tgi/ds (not created yet)"
    assert only(check(free=10 * GB), "disk") == Finding(
        "fail", "disk", "ds", f"10.0 GB free at {where}; {DEEPSEEK} needs 15.2 GB more", fix)
    assert only(check(free=17 * GB), "disk") == Finding(
        "warn", "disk", "ds", f"17.0 GB free at {where}; {DEEPSEEK} needs 15.2 GB (little headroom)", fix)
    # Headroom is 20 %: 18.24 GB is enough.
    assert only(check(free=18_250_000_000), "disk").level == "ok"
    assert only(check(free=18_230_000_000), "disk").level == "warn"
    assert only(check(free=15_200_000_000), "disk").level == "warn"  # exactly fits: not a failure
    two = check({"ds": instance(model="org/unknown"), "b": instance(port=8081)}, free=100 * GB)
    assert only(two, "disk") == Finding(
        "warn", "disk", "b, ds", "100.0 GB free at /var/lib/huggingface-tgi/b (not created yet), "
        f"{where}; size of org/unknown unknown, cannot tell whether it fits; the others need 15.2 GB",
        "check the model's size on the Hub")
    (root / "var/lib/huggingface-tgi/ds").mkdir(parents=True)
    together = check({"ds": instance(), "b": instance(port=8081, cacheDir="/var/lib/huggingface-tgi/ds")}, free=20 * GB)
    # One model in one cacheDir is downloaded once.
    assert only(together, "disk") == Finding(
        "ok", "disk", "b, ds", f"20.0 GB free at /var/lib/huggingface-tgi/ds; {DEEPSEEK} needs 15.2 GB more")


def test_downloaded_files_count_once_and_symlinks_not_at_all(check: Check, root: Path) -> None:
    cached = root / "var/lib/huggingface-tgi/ds/hub/models--deepseek-ai--DeepSeek-R1-Distill-Qwen-7B"
    blob = cached / "blobs" / "abc"
    blob.parent.mkdir(parents=True)
    with blob.open("wb") as handle:
        handle.truncate(5 * GB)
    (cached / "snapshots").mkdir()
    (cached / "snapshots" / "model.safetensors").symlink_to(blob)
    assert only(check(free=100 * GB), "disk").message.endswith(f"{DEEPSEEK} needs 10.2 GB more")
    with blob.open("wb") as handle:
        handle.truncate(20 * GB)  # more than the known size: nothing more to download
    assert only(check(free=1 * GB), "disk").message.endswith(f"{DEEPSEEK} needs 0.0 GB more")


def test_port_findings_name_the_owner_or_the_socket(check: Check, root: Path) -> None:
    listen(root, "tcp6", "0000000000000000FFFF00000100007F:1F90", 4242)
    assert only(check(), "port") == Finding(
        "fail", "port", "ds", "port 8080 on 127.0.0.1 is already in use by socket inode 4242",
        "stop that program or choose another port for instances.ds.port")
    (root / "proc/77/fd").mkdir(parents=True)
    (root / "proc/77/fd/0").symlink_to("socket:[1]")
    (root / "proc/88/fd").mkdir(parents=True)
    (root / "proc/88/fd/5").symlink_to("socket:[4242]")  # no comm file
    (root / "proc/self-not-a-pid").mkdir()
    assert only(check(), "port").message == "port 8080 on 127.0.0.1 is already in use by pid 88 (?)"
    # Another container on the port is not ours.
    runner = FakeRunner({("podman", "port"): CommandResult(0, "80/tcp -> 127.0.0.1:18080\n")})
    assert only(check(runner=runner), "port").level == "fail"
    runner = FakeRunner({("podman", "port"): CommandResult(125, ":8080\n")})
    assert only(check(runner=runner), "port").level == "fail"
    runner = FakeRunner({("podman", "port"): CommandResult(0, "80/tcp -> 127.0.0.1:8080\n")})
    assert only(check(runner=runner), "port") == Finding(
        "ok", "port", "ds", "port 8080 is held by our container huggingface-tgi-ds")
    # A program that is not a publisher (conmon, pasta) holds it while a restarting unit's new container
    # publishes the same port: the program is named, not taken for ours.
    (root / "proc/88/comm").write_text("python3\n")
    finding = only(check(runner=runner), "port")
    assert finding.level == "fail" and finding.message.endswith("in use by pid 88 (python3)"), finding
    for publisher in ("conmon", "pasta.avx2"):
        (root / "proc/88/comm").write_text(f"{publisher}\n")
        assert only(check(runner=runner), "port").level == "ok"


def test_listeners_read_both_tables(root: Path) -> None:
    listen(root, "tcp", "0100007F:1F90", 1)
    listen(root, "tcp6", "00000000000000000000000001000000:0050", 2)  # [::1]:80
    listen(root, "tcp", "0100007F:0016", 3, "01")
    found = doctor.listeners(Host(root=root))
    assert [(str(s.address), s.port, s.inode) for s in found] == [("127.0.0.1", 8080, "1"), ("::1", 80, "2")]
    assert doctor.listeners(Host(root=root / "nowhere")) == []


def test_cdi_findings(check: Check, root: Path) -> None:
    (root / "etc/cdi/nvidia.json").unlink()
    assert only(check(), "cdi") == Finding(
        "fail", "cdi", "ds", "nvidia.com/gpu=all is in no CDI spec in /etc/cdi or /run/cdi",
        "set hardware.nvidia-container-toolkit.enable and check nvidia-container-toolkit-cdi-generator.service")
    move = root / "run/cdi/nvidia.yml"
    write(root, "/run/cdi/nvidia.yml", json.dumps(NVIDIA_CDI))
    runner = FakeRunner({("podman", "--version"): CommandResult(0, "podman version 5.5.0\n")})
    assert only(check(runner=runner), "cdi") == Finding(
        "warn", "cdi", "ds", "nvidia.com/gpu=all is only in /run/cdi, which podman 5.5.0 does not read by default",
        'containers.conf: [engine] cdi_spec_dirs = ["/etc/cdi", "/run/cdi"]')
    # A drop-in overrides containers.conf; the last file that sets cdi_spec_dirs wins.
    write(root, "/etc/containers/containers.conf", '[engine]\ncdi_spec_dirs = ["/etc/cdi"]\n')
    write(root, "/etc/containers/containers.conf.d/50-cdi.conf", '[engine]\ncdi_spec_dirs = ["/etc/cdi", "/run/cdi"]\n')
    write(root, "/etc/containers/containers.conf.d/60-other.conf", "[engine]\nother = 1\n")
    write(root, "/etc/containers/containers.conf.d/70-broken.conf", "[engine\n")
    write(root, "/etc/containers/containers.conf.d/80-ignored.txt", '[engine]\ncdi_spec_dirs = ["/x"]\n')
    assert doctor.cdi_spec_dirs(Host(root=root)) == ["/etc/cdi", "/run/cdi"]
    assert only(check(runner=runner), "cdi") == Finding("ok", "cdi", "ds", "nvidia.com/gpu=all declared in /run/cdi")
    write(root, "/etc/cdi/nvidia.json", json.dumps(NVIDIA_CDI))
    assert only(check(runner=runner), "cdi").message == "nvidia.com/gpu=all declared in /etc/cdi, /run/cdi"
    assert move.exists()


def test_cdi_specs_that_declare_nothing_usable(root: Path) -> None:
    (root / "etc/cdi/nvidia.json").unlink()
    write(root, "/etc/cdi/list.json", "[1, 2]")
    write(root, "/etc/cdi/nokind.json", json.dumps({"devices": [{"name": "0"}]}))
    write(root, "/etc/cdi/odd.yaml", "kind: vendor.com/x\ndevices:\n- name: a\n- nameless: 1\n- 7\n")
    write(root, "/etc/cdi/empty.yaml", "kind: vendor.com/y\ndevices:\n")
    write(root, "/etc/cdi/broken.yaml", "kind: [\n")
    write(root, "/etc/cdi/notes.txt", "kind: vendor.com/z\n")
    found, broken = doctor.cdi_inventory(Host(root=root))
    assert found == {"vendor.com/x=a": {"/etc/cdi"}} and broken == ["/etc/cdi/broken.yaml"]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        # ds's model unit downloaded: the server's start is loading only.
        (systemd("activating", "start"), ("warn", "is activating (start): loading the model",
                                          "journalctl -fu huggingface-tgi-ds.service")),
        (systemd("inactive", "dead", load="not-found"), (
            "warn", "is not installed", "deploy the configuration (nixos-rebuild switch or render-units)")),
        (systemd("active", "running", restarts=3), ("warn", "is active (running) but restarted 3 time(s)",
                                                    "journalctl -u huggingface-tgi-ds.service")),
        (systemd("inactive", "dead"), ("warn", "is inactive (dead)", "systemctl start huggingface-tgi-ds.service")),
        (CommandResult(0, "ActiveState=inactive\n"), ("warn", "is inactive (?)",
                                                      "systemctl start huggingface-tgi-ds.service")),
        (CommandResult(1, "", "Failed to connect\n  to bus\n"), (
            "warn", "cannot be queried: Failed to connect to bus",
            "run doctor on the host that runs the units, where `systemctl status` works (as root)")),
        (CommandResult(1, "", ""), (
            "warn", "cannot be queried: systemctl failed",
            "run doctor on the host that runs the units, where `systemctl status` works (as root)")),
    ],
)
def test_unit_findings(check: Check, answer: CommandResult, expected: tuple[str, str, str]) -> None:
    runner = FakeRunner({("systemctl", "show"): answer})
    assert only(check(runner=runner), "unit") == Finding(
        expected[0], "unit", "ds", f"huggingface-tgi-ds.service {expected[1]}", expected[2])  # type: ignore[arg-type]
    assert ["systemctl", "show", "huggingface-tgi-ds.service",
            "--property=LoadState,ActiveState,SubState,Result,NRestarts"] in runner.calls


def test_failed_units_say_how_to_restart_them(check: Check) -> None:
    journal = "".join(f"line {i}\n" for i in range(25))
    runner = FakeRunner({("systemctl", "show"): CommandResult(0, "ActiveState=failed\n"),
                         ("journalctl",): CommandResult(0, journal)})
    unit = "huggingface-tgi-ds.service"
    assert only(check(runner=runner), "unit") == Finding(
        "fail", "unit", "ds", f"{unit} failed (result: ?)",
        f"read the log below, fix the cause, then systemctl reset-failed {unit}; systemctl start {unit}",
        tuple(f"line {i}" for i in range(5, 25)))


def is_main_show(argv: Sequence[str]) -> bool:
    """`systemctl show` of a server unit (the model units' answers come from the FakeRunner)."""
    return argv[:2] == ["systemctl", "show"] and not argv[2].endswith("-model.service")


def test_units_stuck_for_different_reasons_stay_apart(check: Check) -> None:
    answers = iter([CommandResult(1, "", "reason one"), CommandResult(1, "", "reason two")])
    runner = FakeRunner()
    runner.answers[("systemctl", "show")] = CommandResult(0, "")

    def show(argv: Sequence[str]) -> CommandResult:
        return next(answers) if is_main_show(argv) else runner(argv)

    findings = check({"a": instance(), "b": instance(port=8081)}, runner=show)  # type: ignore[arg-type]
    assert [f.message for f in findings if f.check == "unit"] == [
        "huggingface-tgi-a.service cannot be queried: reason one",
        "huggingface-tgi-b.service cannot be queried: reason two"]
    one_stuck = iter([CommandResult(1, "", "no bus"), systemd("active", "running")])

    def mixed(argv: Sequence[str]) -> CommandResult:
        return next(one_stuck) if is_main_show(argv) else runner(argv)

    findings = check({"a": instance(), "b": instance(port=8081)}, runner=mixed)  # type: ignore[arg-type]
    assert [f.subject for f in findings if f.check == "unit"] == ["a", "b"]
    stuck = FakeRunner({("systemctl", "show"): CommandResult(1, "", "no bus")})
    merged = check({"a": instance(), "b": instance(port=8081), "c": instance(port=8082)}, runner=stuck)
    assert [f for f in merged if f.check == "unit"] == [Finding(
        "warn", "unit", "a, b, c", "3 units cannot be queried: no bus",
        "run doctor on the host that runs the units, where `systemctl status` works (as root)")]


def test_spec_warnings_name_the_instance_or_the_spec() -> None:
    from tgi_nix.nix.facts import Finding as CoreFinding

    found = doctor.spec_warnings([CoreFinding(path="instances.a.image", message="m"),
                                  CoreFinding(path="top", message="n"), CoreFinding(path="instances.b", message="o")])
    assert found == [Finding("warn", "spec", "a", "m", "review instances.a.image in the spec"),
                     Finding("warn", "spec", "spec", "n", "review top in the spec"),
                     Finding("warn", "spec", "b", "o", "review instances.b in the spec")]


def test_run_command_reports_a_missing_or_hanging_command(monkeypatch: pytest.MonkeyPatch) -> None:
    assert doctor.run_command(["/nonexistent/tool", "x"]) == CommandResult(
        127, "", "/nonexistent/tool: command not found")
    assert doctor.run_command(["sh", "-c", "echo out; echo err >&2; exit 3"]) == CommandResult(3, "out\n", "err\n")
    import subprocess

    def hang(*args: Any, **kwargs: Any) -> Any:
        assert kwargs["timeout"] == 30
        raise subprocess.TimeoutExpired("x", 30)

    monkeypatch.setattr(subprocess, "run", hang)
    assert doctor.run_command(["slow"]) == CommandResult(124, "", "slow: timed out")


def test_blocks_when_a_word_does_not_fit_with_the_fix_and_the_log() -> None:
    from rich.console import Console

    findings = [Finding("fail", "unit", "ds", "huggingface-tgi-ds.service failed", "systemctl start x",
                        ("log one", "log two")),
                Finding("ok", "podman", "host", "podman 5.4.2")]
    console = Console(width=40, record=True, color_system=None)
    doctor.print_table(findings, console)
    assert console.export_text() == (
        "fail  unit  ds\n      huggingface-tgi-ds.service failed\n      fix: systemctl start x\n"
        "ok    podman  host\n      podman 5.4.2\nlast log lines of ds:\nlog one\nlog two\n")
    wide = Console(width=120, record=True, color_system=None)
    doctor.print_table(findings, wide)
    text = wide.export_text()
    assert "┃" in text and "huggingface-tgi-ds.service failed" in text and "fix:" not in text
    assert text.endswith("last log lines of ds:\nlog one\nlog two\n")


def test_the_table_when_every_word_fits() -> None:
    from rich.console import Console

    findings = [Finding("fail", "unit", "ds", "huggingface-tgi-ds.service failed", "systemctl start x", ("log 1",)),
                Finding("ok", "podman", "host", "podman 5.4.2")]
    console = Console(width=100, record=True, color_system=None, file=io.StringIO())
    doctor.print_table(findings, console)
    assert console.export_text() == (
        "┏━━━━━━┳━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┓\n"
        "┃      ┃ check  ┃ instance ┃ finding                           ┃ what to do        ┃\n"
        "┡━━━━━━╇━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━┩\n"
        "│ fail │ unit   │ ds       │ huggingface-tgi-ds.service failed │ systemctl start x │\n"
        "│ ok   │ podman │ host     │ podman 5.4.2                      │                   │\n"
        "└──────┴────────┴──────────┴───────────────────────────────────┴───────────────────┘\n"
        "last log lines of ds:\nlog 1\n")


def test_unknown_sizes_and_broken_cdi_specs_are_named(check: Check, root: Path) -> None:
    findings = check({"a": instance(model="org/one"), "b": instance(port=8081, model="org/two")}, free=100 * GB)
    assert "; size of org/one, org/two unknown, cannot tell whether it fits" in only(findings, "disk").message
    write(root, "/etc/cdi/broken.json", "{not json")
    broken = [f for f in check() if f.check == "cdi" and f.level == "warn"]
    assert broken == [Finding("warn", "cdi", "host", "cannot parse CDI spec /etc/cdi/broken.json", "regenerate it")]
MODEL_UNIT = "huggingface-tgi-ds-model.service"


def model_unit(state: str, status: str, result: str = "success") -> CommandResult:
    return CommandResult(0, f"LoadState=loaded\nActiveState={state}\nSubState=start\nResult={result}\nStatusText={status}\n")


@pytest.mark.parametrize(
    ("status", "level", "words"),
    [
        (f"Downloading {DEEPSEEK}: 812.4 MB so far, 38.5 MB/s", "ok",
         f"is downloading {DEEPSEEK}: 812.4 MB so far, 38.5 MB/s, bytes arriving"),
        (f"Downloading {DEEPSEEK}: 812.4 MB so far, 0.0 MB/s (nothing for 120s)", "warn",
         "812.4 MB so far, no bytes for 120s (it fails as stalled after 10min)"),
        (f"Checking the cache for {DEEPSEEK}", "warn", f"is starting: Checking the cache for {DEEPSEEK}"),
    ],
)
def test_an_activating_download_shows_bytes_rate_and_stall(check: Check, status: str, level: str, words: str) -> None:
    runner = FakeRunner({("systemctl", "show", MODEL_UNIT): model_unit("activating", status),
                         ("systemctl", "show"): systemd("activating", "start")})
    findings = check(runner=runner)
    model = only(findings, "model")
    assert (model.level, model.subject) == (level, "ds") and words in model.message
    if level == "warn" and "stalled" in model.message:
        assert "raise services.huggingface-tgi.instances.ds.downloadStallTimeout" in model.fix
    # the server waits for it and only loads
    unit = only(findings, "unit")
    assert "loading the model" in unit.message and "downloading" not in unit.message


def test_a_stalled_download_that_failed_names_its_fix(check: Check) -> None:
    reason = (f"download of {DEEPSEEK} stalled: no bytes arrived for 10min (downloadStallTimeout) at 812.4 MB; "
              "check the network to huggingface.co or raise "
              "services.huggingface-tgi.instances.ds.downloadStallTimeout")
    runner = FakeRunner({("systemctl", "show", MODEL_UNIT): model_unit("failed", reason, "exit-code"),
                         ("systemctl", "show"): systemd("inactive", "dead"),
                         ("journalctl", "-u", MODEL_UNIT): CommandResult(0, reason + "\n")})
    model = only(check(runner=runner), "model")
    assert model.level == "fail" and f"failed (result: exit-code): {reason}" in model.message
    assert model.fix == ("check the network to huggingface.co or raise services.huggingface-tgi.instances.ds."
                         f"downloadStallTimeout, then systemctl reset-failed {MODEL_UNIT}; "
                         "systemctl start huggingface-tgi-ds.service")
    assert model.details == (reason,)


def test_another_failed_download_points_to_its_log(check: Check) -> None:
    runner = FakeRunner({("systemctl", "show", MODEL_UNIT): model_unit("failed", "", "exit-code"),
                         ("journalctl", "-u", MODEL_UNIT): CommandResult(0, "GatedRepoError: 401 Client Error\n")})
    model = only(check(runner=runner), "model")
    assert model.level == "fail" and model.details == ("GatedRepoError: 401 Client Error",)
    assert "HF_TOKEN in environmentFile" in model.fix


def test_no_model_row_when_done_or_without_a_model_unit(check: Check) -> None:
    assert [f for f in check() if f.check == "model"] == []
    runner = FakeRunner({("systemctl", "show"): model_unit("failed", "", "exit-code")})
    findings = check({"ds": instance(downloadModel=False)}, runner=runner)
    assert [f for f in findings if f.check == "model"] == []
    assert MODEL_UNIT not in [c[2] for c in runner.calls if c[:2] == ["systemctl", "show"]]


# ------------------------------------------------------------------------------- rootless users
SHARED_UID = 47481  # huggingface-tgi's uid, derived from its name (core/users.nix)
SHARED_HOME = "/var/lib/huggingface-tgi/.rootless/huggingface-tgi"
AS_SHARED = ("runuser", "-u", "huggingface-tgi", "--", "env", "-C", "/", f"HOME={SHARED_HOME}",
             f"XDG_RUNTIME_DIR=/run/user/{SHARED_UID}", "podman")


def rootless_host(root: Path, uid: int = SHARED_UID, subids: bool = True, linger: bool = True) -> FakeRunner:
    """What setup-users.sh (or NixOS) leaves for the shared user; a podman that runs rootless as it."""
    write(root, "/etc/passwd", f"root:x:0:0::/root:/bin/sh\nhuggingface-tgi:x:{uid}:{uid}::{SHARED_HOME}:/usr/sbin/nologin\n")
    if subids:
        write(root, "/etc/subuid", "alice:100000:65536\nhuggingface-tgi:165536:65536\n")
        write(root, "/etc/subgid", "alice:100000:65536\nhuggingface-tgi:165536:65536\n")
    if linger:
        write(root, "/var/lib/systemd/linger/huggingface-tgi", "")
    return FakeRunner({(*AS_SHARED, "info"): CommandResult(0, "true\n")})


def test_rootless_user_ready_is_one_ok_row_for_the_instances_that_share_it(check: Check, root: Path) -> None:
    runner = rootless_host(root)
    findings = check({"a": instance(rootful=False), "b": instance(rootful=False, port=8081)}, runner=runner)
    user = only(findings, "user")
    assert (user.level, user.subject) == ("ok", "a, b"), user
    assert user.message == f"huggingface-tgi: uid {SHARED_UID}, subordinate ids from 165536 (65536), lingering, podman rootless"
    assert [*AS_SHARED, "info", "--format", "{{.Host.Security.Rootless}}"] in runner.calls
    # rootful instances have no user to check
    assert [f for f in check(runner=runner) if f.check == "user"] == []


@pytest.mark.parametrize(
    ("setup", "words", "fix"),
    [
        ({"uid": 1234}, f"has uid 1234, but the units were rendered for uid {SHARED_UID}", "set uid = 1234 on instances a"),
        ({"subids": False}, "has no subordinate ids in /etc/subuid and /etc/subgid", "setup-users.sh"),
        ({"linger": False}, "does not linger", "loginctl enable-linger huggingface-tgi"),
    ],
)
def test_rootless_user_problems_fail_with_the_fix(check: Check, root: Path, setup: dict[str, Any], words: str,
                                                   fix: str) -> None:
    user = only(check({"a": instance(rootful=False)}, runner=rootless_host(root, **setup)), "user")
    assert user.level == "fail" and words in user.message and fix in user.fix, user


def test_missing_user_and_a_podman_that_cannot_run_as_it_fail(check: Check, root: Path) -> None:
    user = only(check({"a": instance(rootful=False)}), "user")
    assert user.level == "fail" and user.message == "user huggingface-tgi does not exist", user
    assert "nixos-rebuild switch" in user.fix and "setup-users.sh" in user.fix
    runner = rootless_host(root)
    runner.answers[(*AS_SHARED, "info")] = CommandResult(125, "", "Error: cannot set up namespace: newuidmap failed\n")
    user = only(check({"a": instance(rootful=False)}, runner=runner), "user")
    assert user.level == "fail" and user.message.endswith("newuidmap failed"), user
