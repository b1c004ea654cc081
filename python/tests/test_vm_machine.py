"""The VM harness against a real VM: Machine verbs with NixOS test-driver semantics, the mock image in podman.

Boots QEMU under TCG (about 20 s per boot; the image is built once and cached, ~3 min cold).
Run: `pytest -m vm tests/test_vm_machine.py`.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tgi_nix.testing.vm import (
    MOCK_IMAGE_REF,
    Machine,
    MachineCrashed,
    MachineError,
    MachineTimeout,
    RequestedAssertionFailed,
    VmError,
    ensure_image,
    install_units,
    subtest,
    tag_mock_image,
)
from tgi_nix.testing.vm.host import missing_host_packages

pytestmark = [
    pytest.mark.vm,
    # One worker runs this module (under `-n 2 --dist loadgroup`): its tests share one booted machine.
    pytest.mark.xdist_group("vm-machine"),
    pytest.mark.skipif(
        bool(missing_host_packages()) or os.geteuid() != 0,
        reason="needs root and the host tools (python -m tgi_nix.testing.vm --install-host-deps)",
    ),
]


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    ensure_image()
    with Machine(out_dir=tmp_path_factory.mktemp("vm-out")) as m:
        m.start()
        yield m


def test_succeed_returns_stdout_only(machine: Machine) -> None:
    assert machine.succeed("echo hello; echo oops >&2") == "hello\n"
    assert machine.succeed("echo a", "echo b") == "a\nb\n"
    assert machine.succeed("uname -n").strip() == "machine"


def test_succeed_raises_with_command_exit_code_and_output(machine: Machine) -> None:
    with pytest.raises(RequestedAssertionFailed) as err:
        machine.succeed("echo some-stdout; echo some-stderr >&2; exit 3")
    text = str(err.value)
    assert "exit code 3" in text and "some-stdout" in text and "some-stderr" in text
    assert "journal" in text  # the failure carries the last journal lines


def test_fail(machine: Machine) -> None:
    assert machine.fail("echo out; false") == "out\n"
    with pytest.raises(RequestedAssertionFailed, match="unexpectedly succeeded"):
        machine.fail("true")


def test_execute_exit_codes_and_strict_mode(machine: Machine) -> None:
    assert machine.execute("exit 7") == (7, "")
    assert machine.execute("false; echo not-reached") == (1, "")  # set -e
    assert machine.execute("false | true")[0] == 1  # pipefail
    assert machine.execute("echo $UNSET_VARIABLE")[0] != 0  # set -u
    rc, out = machine.execute("printf 'no newline'")
    assert (rc, out) == (0, "no newline")


def test_execute_binary_and_huge_output(machine: Machine) -> None:
    rc, raw = machine.execute_bytes(r"printf '\000\001\377:%s-END\n\r\033[0m' marker")
    assert (rc, raw) == (0, b"\x00\x01\xff:marker-END\n\r\x1b[0m")
    rc, text = machine.execute(r"printf 'a\377b'")
    assert text == "a\ufffdb"
    t0 = time.monotonic()
    out = machine.succeed("head -c 3000000 /dev/zero | tr '\\0' x")
    assert out == "x" * 3_000_000
    print(f"3 MB of output in {time.monotonic() - t0:.1f} s")


def test_execute_timeout_kills_and_raises(machine: Machine) -> None:
    t0 = time.monotonic()
    with pytest.raises(MachineTimeout, match="timed out after 2 s"):
        machine.execute("echo started; sleep 300; echo never", timeout=2)
    assert time.monotonic() - t0 < 30
    machine.fail("pgrep -x -f 'sleep 300'")
    assert machine.succeed("echo still-alive") == "still-alive\n"


def test_wait_until_succeeds_and_fails(machine: Machine) -> None:
    machine.succeed("rm -f /tmp/flag; (sleep 2; touch /tmp/flag) >/dev/null 2>&1 &")
    assert machine.wait_until_succeeds("test -e /tmp/flag && echo there", timeout=30) == "there\n"
    machine.succeed("(sleep 2; rm /tmp/flag) >/dev/null 2>&1 &")
    machine.wait_until_fails("test -e /tmp/flag", timeout=30)
    t0 = time.monotonic()
    with pytest.raises(MachineTimeout, match="action timed out"):
        machine.wait_until_succeeds("false", timeout=3)
    assert time.monotonic() - t0 < 30
    machine.succeed("(sleep 2; touch /tmp/file2) >/dev/null 2>&1 &")
    machine.wait_for_file("/tmp/file2", timeout=30)


def test_wait_for_unit(machine: Machine) -> None:
    machine.wait_for_unit("multi-user.target", timeout=120)
    assert machine.get_unit_info("multi-user.target")["ActiveState"] == "active"
    rc, out = machine.systemctl("is-active multi-user.target")
    assert (rc, out) == (0, "active\n")
    machine.succeed("systemd-run --unit=doomed.service --property=Type=oneshot false || true")
    t0 = time.monotonic()
    with pytest.raises(RequestedAssertionFailed, match='unit "doomed.service" reached state "failed"'):
        machine.wait_for_unit("doomed.service", timeout=60)
    with pytest.raises(RequestedAssertionFailed, match="inactive and there are no pending jobs"):
        machine.wait_for_unit("systemd-timesyncd.service", timeout=60)  # masked in the image
    assert time.monotonic() - t0 < 30  # both fail fast, not after the timeout
    # A unit left inactive by a dependency that failed: the error names the dependency and shows its status.
    machine.succeed(
        "printf '[Service]\\nType=oneshot\\nExecStart=/bin/false\\n' > /run/systemd/system/broken.service"
        " && printf '[Unit]\\nRequires=broken.service\\nAfter=broken.service\\n[Service]\\nExecStart=/bin/sleep 600\\n'"
        " > /run/systemd/system/needy.service && systemctl daemon-reload && systemctl start --no-block needy.service"
    )
    with pytest.raises(RequestedAssertionFailed, match="inactive and there are no pending jobs") as err:
        machine.wait_for_unit("needy.service", timeout=60)
    assert "required and not active: ['broken.service']" in str(err.value), err.value
    assert "/bin/false" in str(err.value), err.value  # broken.service's own status


def test_wait_for_ports(machine: Machine) -> None:
    machine.succeed("systemd-run --unit=web.service python3 -m http.server --bind 127.0.0.1 8123")
    machine.wait_for_open_port(8123, timeout=60)
    machine.wait_for_unit("web.service", timeout=30)
    machine.succeed("systemctl stop web.service")
    machine.wait_for_closed_port(8123, timeout=30)


def test_copy_from_host_files_and_directories(machine: Machine, tmp_path: Path) -> None:
    script = tmp_path / "hello.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o750)
    machine.copy_from_host(script, "/opt/new/hello.sh")
    assert machine.succeed("/opt/new/hello.sh; stat -c '%a %U' /opt/new/hello.sh") == "hi\n750 root\n"
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "a.txt").write_text("A")
    machine.copy_from_host(tree, "/srv/tree")
    assert machine.succeed("cat /srv/tree/sub/a.txt") == "A"
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(4 * 1024 * 1024))
    t0 = time.monotonic()
    machine.copy_from_host(big, "/root/big.bin")
    took = time.monotonic() - t0
    assert (
        machine.succeed("sha256sum /root/big.bin").split()[0] == hashlib.sha256(big.read_bytes()).hexdigest()
    )
    print(f"copy_from_host: 4 MiB in {took:.1f} s")


def test_put_files_writes_many_files_in_one_transfer(machine: Machine) -> None:
    machine.put_files(
        {
            "/opt/put/bin/run.sh": (b"#!/bin/sh\necho ran\n", 0o755),
            "/opt/put/secret/key": (b"s3cret\n", 0o600),
            "/etc/put-test.conf": (b"x=1\n", 0o644),
        },
        {"/opt/put/secret": 0o700, "/etc": 0o700},
    )
    assert machine.succeed("/opt/put/bin/run.sh") == "ran\n"
    got = machine.succeed("stat -c '%a %U %n' /opt/put/bin /opt/put/bin/run.sh /opt/put/secret /opt/put/secret/key /etc")
    assert got.splitlines() == [
        "755 root /opt/put/bin",  # a missing parent
        "755 root /opt/put/bin/run.sh",
        "700 root /opt/put/secret",  # a new folder gets the mode asked for
        "600 root /opt/put/secret/key",
        "755 root /etc",  # an existing folder keeps its own
    ], got
    with pytest.raises(VmError, match="not an absolute path"):
        machine.put_files({"relative/file": (b"", 0o644)})


def test_copy_from_vm(machine: Machine) -> None:
    machine.succeed(
        "mkdir -p /root/res/d && echo data > /root/res/d/f && head -c 1000 /dev/urandom > /root/bin"
    )
    machine.copy_from_vm("/root/res", "got")
    assert (machine.out_dir / "got/res/d/f").read_text() == "data\n"
    machine.copy_from_vm("/root/bin")
    assert (machine.out_dir / "bin").stat().st_size == 1000


def test_mock_image_runs_under_podman(machine: Machine) -> None:
    with subtest("the mock image is already imported"):
        machine.succeed(f"podman image exists {MOCK_IMAGE_REF}", "test -s /opt/tgi-mock.tar")
    with subtest("its Python is byte-compiled (a fresh container does not compile what it imports)"):
        listing = machine.succeed("tar -tf /opt/tgi-mock.tar | grep -E 'tgi_nix_mock/__pycache__/main[.]|json/__pycache__/decoder[.]'")
        assert "opt/tgi-mock/tgi_nix_mock/__pycache__/main.cpython-313.pyc" in listing.split(), listing[:500]
        assert "usr/lib/python3.13/json/__pycache__/decoder.cpython-313.pyc" in listing.split(), listing[:500]
    with subtest("it serves /health on port 80 and has curl inside"):
        machine.succeed(
            "podman run -d --init --name mock -p 127.0.0.1:8080:80 "
            f"{MOCK_IMAGE_REF} --model-id test/model >/dev/null",
            timeout=120,
        )
        machine.wait_until_succeeds("curl -fsS http://127.0.0.1:8080/health", timeout=60)
        machine.succeed("podman exec mock curl -fsS http://127.0.0.1:80/health")
        machine.wait_until_succeeds("podman logs mock 2>&1 | grep -c 'Starting Webserver'", timeout=30)
    with subtest("tagged with the real name it runs with --pull=never"):
        tag_mock_image(machine, "ghcr.io/huggingface/text-generation-inference:3.3.7")
        machine.succeed(
            "podman run --rm --pull=never --entrypoint /bin/sh "
            "ghcr.io/huggingface/text-generation-inference:3.3.7 -c 'echo $PORT $HF_HOME'"
        )
        machine.succeed("podman rm -f -t 0 mock >/dev/null")


def test_install_units(machine: Machine, tmp_path: Path) -> None:
    (tmp_path / "systemd").mkdir()
    (tmp_path / "tmpfiles.d").mkdir()
    (tmp_path / "systemd" / "demo.service").write_text(
        "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c 'echo ok > /run/demo/out'\n"
    )
    (tmp_path / "tmpfiles.d" / "demo.conf").write_text("d /run/demo 0750 root root -\n")
    assert install_units(machine, tmp_path) == ["demo.service"]
    machine.succeed("stat -c %a /run/demo | grep -cx 750", "systemctl start demo.service")
    machine.wait_for_unit("demo.service", timeout=30)
    assert machine.succeed("cat /run/demo/out") == "ok\n"


def test_a_guest_dying_in_early_boot_is_booted_once_more(capsys: pytest.CaptureFixture[str]) -> None:
    # init exits at once -> kernel panic -> QEMU exits (-no-reboot): the boot is retried once, then fails.
    with Machine(name="panicky", kernel_params="init=/bin/false") as m, pytest.raises(MachineError) as info:
        m.start()
    assert "no root shell" in str(info.value)
    assert capsys.readouterr().err.count("the guest died while booting") == 1
    assert m.process is not None and m.process.poll() is not None


def test_a_guest_dying_under_a_command_is_reported_then_crash_reboot_shutdown() -> None:
    # The CI failure mode this covers: QEMU went away mid-test and every later test of the module
    # got a BrokenPipeError with no clue why. Now the error says how QEMU ended and shows the panic.
    with Machine(name="dying") as m:
        m.succeed("echo before > /root/mark; sync")
        with pytest.raises(MachineCrashed) as info:
            m.succeed("echo c > /proc/sysrq-trigger")
        message = str(info.value)
        assert "QEMU: exit status 0" in message  # panic=-1 + -no-reboot: QEMU exits by itself
        assert "sysrq" in message.lower()  # the console's last words are in the error
        assert not m.is_up()
        assert m.succeed("cat /root/mark") == "before\n"  # booted again, same disk
        # The harness's own verbs on the same machine (one boot fewer than a machine of their own):
        # a crash keeps what was synced, a reboot what was written, a shutdown ends QEMU cleanly.
        m.succeed("echo persisted > /root/synced; sync")
        m.crash()
        assert not m.is_up()
        m.start()
        assert m.succeed("cat /root/synced") == "persisted\n"
        m.succeed("echo second > /root/clean")
        m.reboot()
        assert m.succeed("cat /root/clean") == "second\n"
        m.shutdown()
        assert not m.is_up()
        assert m.process is not None and m.process.returncode == 0
