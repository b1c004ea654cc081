"""`tgi-nix doctor` against a prepared fake root and canned command output."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from tgi_nix.cli import main
from tgi_nix.nix.bridge import evaluate
from tgi_nix.ops import doctor
from tgi_nix.ops.doctor import CommandResult, Finding, Host, run_checks
from tgi_nix.spec.loader import parse_spec

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
    return {"model": DEEPSEEK, "port": 8080, "gpus": "all", "environmentFile": ENV_FILE, **extra}


Check = Callable[..., list[Finding]]


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
        core = evaluate(spec)
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
    finding = only(check({"ds": instance(user="tgi-ds", uid=2001)}, runner=runner), "port")
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
    spec.write_text(f'[instances.ds]\nmodel = "org/m"\nport = 8080\nenvironmentFile = "{ENV_FILE}"\n')
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
    spec.write_text(f'[instances.ds]\nmodel = "org/m"\nport = 8080\nenvironmentFile = "{ENV_FILE}"\n')
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
