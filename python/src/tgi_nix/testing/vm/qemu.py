"""The QEMU process and the root shell on its virtio serial port (the "backdoor" of the NixOS test driver)."""

from __future__ import annotations

import base64
import os
import re
import secrets
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import guest
from .errors import MachineCrashed, MachineError

_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\r")
# Scripts longer than this travel as a file (`__tn_recv`) instead of on the command line.
_INLINE_LIMIT = 60_000


@dataclass(frozen=True)
class RunResult:
    """Outcome of one script in the guest; `rc` is None when the guest-side timeout killed it."""

    rc: int | None
    stdout: bytes
    stderr: bytes


def qemu_command(
    *,
    name: str,
    kernel: Path,
    initrd: Path,
    disk: Path,
    disk_format: str,
    console_log: Path,
    shell_socket: Path,
    memory_mib: int,
    smp: int,
    extra_append: str = "",
) -> list[str]:
    append = f"root=/dev/vda rw console=ttyS0 panic=-1 systemd.hostname={name} {extra_append}".strip()
    return [
        "qemu-system-x86_64",
        "-name", name,
        # KVM hangs on these hosts: TCG, and tb-size=128 halves QEMU's memory at equal speed.
        "-accel", "tcg,thread=multi,tb-size=128",
        "-cpu", os.environ.get("TGI_NIX_VM_CPU", "max"),
        "-smp", str(smp),
        "-m", str(memory_mib),
        "-display", "none",
        "-vga", "none",
        "-monitor", "none",
        "-no-reboot",
        "-serial", f"file:{console_log}",
        "-kernel", str(kernel),
        "-initrd", str(initrd),
        "-append", append,
        "-drive", f"file={disk},if=virtio,format={disk_format},cache=unsafe,discard=unmap",
        "-nic", "none",
        "-device", "virtio-rng-pci",
        "-device", "virtio-serial-pci",
        # QEMU connects as a client to our listening socket, so no guest output is lost before we accept.
        "-chardev", f"socket,id=shell,path={shell_socket}",
        # A serial port, not virtconsole: QEMU drops console output when this socket is not read fast
        # enough, but throttles a serial port (guest.BACKDOOR_SCRIPT).
        "-device", f"virtserialport,chardev=shell,name={guest.SHELL_PORT_NAME}",
    ]  # fmt: skip


def console_tail(console_log: Path, lines: int = 30) -> list[str]:
    """The last lines the guest wrote to its serial console (ANSI colours removed)."""
    try:
        with console_log.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read()
    except OSError:
        return []
    text = _ANSI.sub(b"", data).decode(errors="replace")
    return [line for line in text.splitlines() if line.strip()][-lines:]


class Shell:
    """The root shell on a virtio serial port. One request at a time: send a line, read until its random marker."""

    def __init__(self, conn: socket.socket, alive: Callable[[], bool]) -> None:
        self.conn = conn
        self.alive = alive
        self.buf = bytearray()

    def close(self) -> None:
        self.conn.close()

    def _read_until(self, token: bytes, deadline: float | None, what: str) -> bytes:
        """Return everything up to and including `token`; keep the rest buffered."""
        scan_from = 0
        while True:
            idx = self.buf.find(token, scan_from)
            if idx >= 0:
                end = idx + len(token)
                data = bytes(self.buf[:end])
                del self.buf[:end]
                return data
            scan_from = max(0, len(self.buf) - len(token))
            wait = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
            if wait <= 0:
                raise TimeoutError(f"no answer from the guest shell while {what}")
            self.conn.settimeout(wait)
            try:
                chunk = self.conn.recv(1 << 20)
            except TimeoutError:
                if not self.alive():
                    raise MachineCrashed(f"QEMU exited while {what}") from None
                continue
            if not chunk:
                # QEMU holds the console socket until it exits: the guest shell dying alone
                # is restarted by its unit (Restart=always) and does not close it.
                raise MachineCrashed(f"the console closed (QEMU exited) while {what}")
            self.buf += chunk

    def wait_ready(self, deadline: float) -> None:
        self._read_until(guest.READY_MARKER.encode() + b"\n", deadline, "booting")
        self.send_line(
            'eval "$(echo ' + base64.b64encode(guest.SHELL_HELPERS.encode()).decode() + ' | base64 -d)"'
        )
        result = self.run("echo ok", timeout=60)
        if result.rc != 0 or result.stdout != b"ok\n":
            raise MachineError(f"the guest shell does not answer as expected: {result}")

    def send_line(self, line: str) -> None:
        self.conn.settimeout(60)
        self.conn.sendall(line.encode() + b"\n")

    def run(self, script: str, timeout: float | None) -> RunResult:
        """Run `script` with bash in the guest; `timeout` (s) kills it there, None waits forever."""
        marker = "TN" + secrets.token_hex(8)
        payload = base64.b64encode(script.encode()).decode()
        if len(payload) > _INLINE_LIMIT:
            self.send_bytes(script.encode(), "/run/tgi-nix-bd/cmd.in", timeout=None)
            payload = "@/run/tgi-nix-bd/cmd.in"
        guest_timeout = 0 if timeout is None else max(1, int(timeout + 0.999))
        self.send_line(f"__tn_run {marker} {guest_timeout} {payload}")
        # Host-side margin: kill-after (5 s) plus time to ship the output back.
        deadline = None if timeout is None else time.monotonic() + timeout + 60
        return self._result(marker, deadline, "running a command")

    def _result(self, marker: str, deadline: float | None, what: str) -> RunResult:
        data = self._read_until(f":{marker}-END\n".encode(), deadline, what)
        start = data.rfind(f"\n{marker}:".encode())
        if start < 0:
            raise MachineError(f"garbled answer from the guest shell: {data[-200:]!r}")
        rc, out, err, _ = data[start + len(marker) + 2 :].split(b":", 3)
        return RunResult(
            rc=None if rc == b"timeout" else int(rc),
            stdout=base64.b64decode(out),
            stderr=base64.b64decode(err),
        )

    def send_bytes(self, data: bytes, guest_path: str, timeout: float | None) -> None:
        """Write `data` to `guest_path` through the console (base64; ~MB/s under TCG)."""
        marker = "TN" + secrets.token_hex(8)
        encoded = base64.b64encode(data)
        deadline = None if timeout is None else time.monotonic() + timeout
        self.send_line(f"__tn_recv {marker} {guest_path} {len(encoded)}")
        # Bash reads ahead up to 1 KB from the console: send the data only once `head` is reading.
        self._read_until(f"\n{marker}-GO\n".encode(), deadline, "starting a file transfer")
        self.conn.settimeout(None if timeout is None else max(1.0, timeout))
        self.conn.sendall(encoded)
        result = self._result(marker, deadline, "transferring a file")
        if result.rc != 0:
            raise MachineError(f"writing {guest_path} in the guest failed (exit code {result.rc})")


def start_qemu(command: list[str], state_dir: Path) -> subprocess.Popen[bytes]:
    with (state_dir / "qemu.log").open("ab") as qlog:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=qlog, stderr=subprocess.STDOUT)
