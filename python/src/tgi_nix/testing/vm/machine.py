"""`Machine`: a Debian VM under QEMU TCG driven like the NixOS test driver's `machine` object.

Verbs, arguments, defaults and error messages follow nixpkgs' `nixos/lib/test-driver` so that one scenario
script runs under both drivers. Differences: `execute` returns stdout only (stderr shows in errors and the
log, as on NixOS where it goes to the console), a command that runs past its timeout is killed and raises
`MachineTimeout` (NixOS returns exit code 124), and `reboot()` restarts QEMU on the same disk.
"""

from __future__ import annotations

import atexit
import io
import re
import shlex
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import NoReturn

from .errors import MachineCrashed, MachineError, MachineTimeout, RequestedAssertionFailed, VmError, log
from .image import VmImage, ensure_image
from .qemu import RunResult, Shell, console_tail, qemu_command, start_qemu
from .verbs import MachineVerbs

CONTEXT_LINES = 30

# QEMU outlives a Python process that forgot cleanup(): kill what is still running at exit.
_RUNNING: weakref.WeakSet[Machine] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    for machine in list(_RUNNING):
        machine.cleanup()


def _tail(data: bytes, limit: int = 2000) -> str:
    text = data.decode(errors="replace")
    return text if len(text) <= limit else "…" + text[-limit:]


class Machine(MachineVerbs):
    """One VM. `start()` boots it (copy-on-write over the cached image); every verb starts it if needed."""

    def __init__(
        self,
        image: VmImage | None = None,
        name: str = "machine",
        memory_mib: int = 1536,
        smp: int = 2,
        state_dir: Path | None = None,
        out_dir: Path | None = None,
        keep_state: bool = False,
        boot_timeout: float = 600,
        writable_root: bool = False,
        kernel_params: str = "",
    ) -> None:
        self.name = name
        self._image = image
        self.memory_mib = memory_mib
        self.smp = smp
        self.boot_timeout = boot_timeout
        self.keep_state = keep_state or state_dir is not None
        self.state_dir = state_dir or Path(tempfile.mkdtemp(prefix=f"tgi-nix-vm-{name}-"))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir = out_dir or Path.cwd()
        # Only the image build boots the image itself, to provision it.
        self.writable_root = writable_root
        self.kernel_params = kernel_params
        self.console_log = self.state_dir / "console.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.shell: Shell | None = None
        self.booted = False
        self.boot_seconds: float | None = None

    def __repr__(self) -> str:
        return f"<Machine '{self.name}'>"

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def image(self) -> VmImage:
        if self._image is None:
            self._image = ensure_image()
        return self._image

    def log(self, msg: str) -> None:
        log(msg, self.name)

    def is_up(self) -> bool:
        return self.booted and self.shell is not None

    def _alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Boot the machine and wait for its root shell (no-op when running)."""
        if self.booted:
            return
        image = self.image
        if self.writable_root:
            disk, fmt = image.root, "raw"
        else:
            disk, fmt = self.state_dir / "overlay.qcow2", "qcow2"
            if not disk.exists():  # kept across reboot() and crash(), like a real disk
                subprocess.run(
                    [
                        "qemu-img",
                        "create",
                        "-q",
                        "-f",
                        "qcow2",
                        "-b",
                        str(image.root),
                        "-F",
                        "raw",
                        str(disk),
                    ],
                    check=True,
                )
        for attempt in (1, 2):
            try:
                t0 = self._boot(disk, fmt)
                break
            except MachineError as exc:
                # A guest kernel that dies early under TCG (seen: an oops in sched_init_debug at
                # ~2 s, QEMU exits) says nothing about what is tested: boot once more. _boot raises
                # only before the shell is ready, so QEMU having exited means the guest died.
                if attempt == 2 or self.process is None:
                    raise
                try:  # the console closes a moment before QEMU exits
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    raise exc from None
                self.log("the guest died while booting (QEMU exited); booting once more")
                self._stopped()
        self.boot_seconds = time.monotonic() - t0
        self.log(f"shell after {self.boot_seconds:.1f} s")

    def _boot(self, disk: Path, fmt: str) -> float:
        """Start QEMU and wait for the root shell; returns the start time (monotonic)."""
        image = self.image
        sock_path = self.state_dir / "shell.sock"
        sock_path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(sock_path))
        listener.listen(1)
        command = qemu_command(
            name=self.name, kernel=image.kernel, initrd=image.initrd, disk=disk, disk_format=fmt,
            console_log=self.console_log, shell_socket=sock_path, memory_mib=self.memory_mib, smp=self.smp,
            extra_append=self.kernel_params,
        )  # fmt: skip
        t0 = time.monotonic()
        self.log(f"booting vm ({self.smp} cpu, {self.memory_mib} MiB, TCG) …")
        self.process = start_qemu(command, self.state_dir)
        _RUNNING.add(self)
        try:
            listener.settimeout(1)
            while True:
                try:
                    conn, _ = listener.accept()
                    break
                except TimeoutError:
                    if not self._alive() or time.monotonic() - t0 > 60:
                        self._raise(MachineError, "QEMU did not connect to the shell socket")
        finally:
            listener.close()
        self.booted = True
        self.shell = Shell(conn, self._alive)
        try:
            self.shell.wait_ready(t0 + self.boot_timeout)
        except (TimeoutError, MachineError) as exc:
            self._raise(MachineError, f"no root shell after {time.monotonic() - t0:.0f} s: {exc}")
        return t0

    def wait_for_shutdown(self, timeout: float = 300) -> None:
        """Wait for QEMU to exit (after a poweroff the guest started)."""
        if not self.booted or self.process is None:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._raise(MachineTimeout, f"the machine did not power off within {timeout} s")
        self._stopped()

    def _stopped(self) -> None:
        if self.shell is not None:
            self.shell.close()
        self.shell = None
        self.booted = False
        _RUNNING.discard(self)

    def shutdown(self) -> None:
        """Power off cleanly and wait for QEMU to exit."""
        if not self.booted or self.shell is None:
            return
        self.log("powering off")
        self.shell.send_line("systemctl poweroff")
        self.wait_for_shutdown()

    def crash(self) -> None:
        """Kill QEMU at once, like pulling the plug (unsynced guest writes are lost)."""
        if self.process is not None and self._alive():
            self.log("crashing (killing QEMU)")
            self.process.kill()
            self.process.wait()
        self._stopped()

    def reboot(self) -> None:
        """Clean power off, then boot again on the same disk (QEMU is restarted)."""
        self.shutdown()
        self.start()

    def cleanup(self) -> None:
        """Kill the machine if needed and delete its state folder (unless kept)."""
        self.crash()
        if not self.keep_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> Machine:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()

    # -- failures ----------------------------------------------------------------------------------

    def context(self, lines: int = CONTEXT_LINES) -> str:
        """The last journal lines (console lines when the shell is gone), to explain a failure."""
        if self.is_up() and self.shell is not None:
            try:
                res = self.shell.run(f"journalctl -b --no-pager -q -n {lines} -o short-monotonic", timeout=20)
                if res.rc == 0 and res.stdout.strip():
                    return f"last {lines} journal lines of {self.name}:\n" + _tail(res.stdout, 8000)
            except (TimeoutError, VmError, OSError):
                pass
        tail = "\n".join(console_tail(self.console_log, lines))
        return f"last console lines of {self.name} ({self.console_log}):\n{tail}"

    def _crashed(self, message: str) -> NoReturn:
        """QEMU went away under a running command: say how it ended, keep the console's last
        words, and leave the machine stopped so that the next command boots it again."""
        status = "still running"
        if self.process is not None:
            try:
                rc = self.process.wait(timeout=10)
                status = f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}"
            except subprocess.TimeoutExpired:
                status = "not exiting; killed"
                self.process.kill()
                self.process.wait()
        qemu_log = self.state_dir / "qemu.log"
        try:
            qemu_tail = _tail(qemu_log.read_bytes(), 2000) or "(empty)"
        except OSError:
            qemu_tail = "(missing)"
        context = "\n".join(console_tail(self.console_log, CONTEXT_LINES))
        self._stopped()
        self.log(f"QEMU ended under a command ({status})")
        raise MachineCrashed(
            f"{self.name}: {message}\nQEMU: {status}; its output: {qemu_tail}\n"
            f"last console lines of {self.name} ({self.console_log}):\n{context}"
        )

    def _raise(self, cls: type[VmError], message: str) -> NoReturn:
        raise cls(f"{self.name}: {message}\n{self.context()}")

    # -- commands ----------------------------------------------------------------------------------

    def _run(self, command: str, timeout: float | None) -> RunResult:
        self.start()
        assert self.shell is not None
        try:
            result = self.shell.run(f"set -euo pipefail\n{command}\n", timeout)
        except TimeoutError as exc:
            self._raise(MachineTimeout, f"command `{command}`: {exc}")
        except (MachineCrashed, OSError) as exc:
            if isinstance(exc, MachineCrashed) or not self._alive():
                self._crashed(f"command `{command}`: {exc}")
            self._raise(MachineError, f"command `{command}`: console connection failed: {exc}")
        if result.rc is None:
            self._raise(
                MachineTimeout,
                f"command `{command}` timed out after {timeout} s and was killed\n"
                f"stdout: {_tail(result.stdout)}\nstderr: {_tail(result.stderr)}",
            )
        return result

    def execute(
        self, command: str, check_return: bool = True, check_output: bool = True, timeout: int | None = 900
    ) -> tuple[int, str]:
        """Run a bash command (`set -euo pipefail`); return (exit code, stdout). Raises MachineTimeout."""
        if not check_output:
            self.start()
            assert self.shell is not None
            self.shell.send_line(f"( {command} ) >/dev/null 2>&1 </dev/null &")
            return (-2, "")
        try:
            result = self._run(command, timeout)
        except MachineError:
            if check_return:
                raise
            return (-1, "")  # e.g. `poweroff`: the shell went away, as intended
        assert result.rc is not None
        return (result.rc if check_return else -1, result.stdout.decode(errors="replace"))

    def execute_bytes(self, command: str, timeout: int | None = 900) -> tuple[int, bytes]:
        """Like `execute`, but stdout is returned undecoded (binary output)."""
        result = self._run(command, timeout)
        assert result.rc is not None
        return (result.rc, result.stdout)

    def succeed(self, *commands: str, timeout: int | None = None) -> str:
        """Run each command; raise if one exits non-zero. Returns the concatenated stdout."""
        output = ""
        for command in commands:
            result = self._run(command, timeout)
            if result.rc != 0:
                self._raise(
                    RequestedAssertionFailed,
                    f"command `{command}` failed (exit code {result.rc})\n"
                    f"stdout: {_tail(result.stdout)}\nstderr: {_tail(result.stderr)}",
                )
            output += result.stdout.decode(errors="replace")
        return output

    def fail(self, *commands: str, timeout: int | None = None) -> str:
        """Run each command; raise if one exits zero. Returns the concatenated stdout."""
        output = ""
        for command in commands:
            result = self._run(command, timeout)
            if result.rc == 0:
                self._raise(
                    RequestedAssertionFailed,
                    f"command `{command}` unexpectedly succeeded\nstdout: {_tail(result.stdout)}",
                )
            output += result.stdout.decode(errors="replace")
        return output

    def sleep(self, secs: int) -> None:
        self.succeed(f"sleep {secs}")

    def wait_for_console_text(self, regex: str, timeout: int = 900) -> None:
        """Wait until the serial console log matches `regex`."""
        pattern = re.compile(regex)
        self._retry(
            lambda _: bool(pattern.search("\n".join(console_tail(self.console_log, 10_000)))),
            timeout,
            f"waiting for /{regex}/ on the console",
        )

    # -- files -------------------------------------------------------------------------------------

    def copy_from_host(self, source: str | Path, target: str) -> None:
        """Copy a host file or folder to `target` in the machine (mode bits kept, owned by root)."""
        src = Path(source)
        if not src.exists():
            raise VmError(f"copy_from_host: {src} does not exist")

        def as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            return info

        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(src, arcname=src.name, filter=as_root)
        self.start()
        assert self.shell is not None
        staging = "/run/tgi-nix-bd/xfer"
        try:
            self.shell.send_bytes(buf.getvalue(), f"{staging}.tar", timeout=600)
        except (MachineCrashed, OSError) as exc:
            if isinstance(exc, MachineCrashed) or not self._alive():
                self._crashed(f"copying {src} to {target}: {exc}")
            raise
        q = shlex.quote
        self.succeed(
            f"rm -rf {staging} && mkdir -p {staging} && tar -C {staging} -xf {staging}.tar && "
            f"mkdir -p {q(str(Path(target).parent))} && cp -r --preserve=mode {q(staging + '/' + src.name)} "
            f"{q(target)}; rc=$?; rm -rf {staging} {staging}.tar; exit $rc"
        )

    def put_files(self, files: Mapping[str, tuple[bytes, int]], dirs: Mapping[str, int] | None = None) -> None:
        """Write many files in one transfer: absolute guest path -> (content, mode), owned by root.

        `dirs` (absolute path -> mode) are made with that mode if they do not exist yet; other missing
        parents are made 0755. Existing directories keep their mode and owner. One console transfer
        and one `tar` instead of a transfer and a command per file, which under TCG cost seconds each.
        """
        def add(tar: tarfile.TarFile, path: str, mode: int, data: bytes | None) -> None:
            if not path.startswith("/") or ".." in Path(path).parts:
                raise VmError(f"put_files: {path!r} is not an absolute path")
            info = tarfile.TarInfo(path.lstrip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mode = mode
            info.mtime = int(time.time())
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for path, mode in sorted((dirs or {}).items()):
                add(tar, path, mode, None)
            for path, (data, mode) in sorted(files.items()):
                add(tar, path, mode, data)
        self.start()
        assert self.shell is not None
        staging = "/run/tgi-nix-bd/put.tar"
        try:
            self.shell.send_bytes(buf.getvalue(), staging, timeout=600)
        except (MachineCrashed, OSError) as exc:
            if isinstance(exc, MachineCrashed) or not self._alive():
                self._crashed(f"writing {len(files)} files: {exc}")
            raise
        self.succeed(f"tar -C / --no-overwrite-dir -xpf {staging}; rc=$?; rm -f {staging}; exit $rc")

    def copy_from_vm(self, source: str, target_dir: str = "") -> None:
        """Copy a machine file or folder to `out_dir/target_dir/<basename>` on the host."""
        src = Path(source)
        rc, data = self.execute_bytes(f"tar -C {shlex.quote(str(src.parent))} -cf - {shlex.quote(src.name)}")
        if rc != 0:
            self._raise(RequestedAssertionFailed, f"copy_from_vm: cannot read {source} (exit code {rc})")
        dest = self.out_dir / target_dir
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
            tar.extractall(dest, filter="data")

    copy_from_machine = copy_from_vm
