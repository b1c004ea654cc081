"""The NixOS test driver's waiting and systemd verbs, on top of `execute` (nixpkgs test-driver semantics)."""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import NoReturn

from .errors import MachineTimeout, RequestedAssertionFailed, VmError


class MachineVerbs(ABC):
    """Everything here only runs commands through `execute` and reports through `_raise`."""

    @abstractmethod
    def execute(
        self, command: str, check_return: bool = True, check_output: bool = True, timeout: int | None = 900
    ) -> tuple[int, str]: ...

    @abstractmethod
    def _raise(self, cls: type[VmError], message: str) -> NoReturn: ...

    # -- waiting -----------------------------------------------------------------------------------

    def _retry(self, check: Callable[[bool], bool], timeout: float, what: str) -> None:
        """NixOS `retry`: call `check` each second until true; one last try after the timeout."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if check(False):
                return
            time.sleep(1)
        if not check(True):
            self._raise(
                MachineTimeout,
                f"{what}: action timed out after {time.monotonic() - t0:.2f} seconds (timeout={timeout})",
            )

    def _remaining(self, t0: float, timeout: float) -> int:
        """Per-attempt command timeout: what is left of the wait, but never less than 10 s."""
        return max(10, int(timeout - (time.monotonic() - t0)) + 1)

    def _wait_for_status(self, command: str, timeout: int, want_success: bool) -> str:
        """Re-run `command` until its exit status is zero (or non-zero); return its last output."""
        output = ""
        t0 = time.monotonic()

        def check(_last: bool) -> bool:
            nonlocal output
            try:
                status, output = self.execute(command, timeout=self._remaining(t0, timeout))
            except MachineTimeout:
                return False  # a hung attempt is a failed attempt; the overall timeout decides
            return (status == 0) == want_success

        self._retry(check, timeout, f"waiting for {'success' if want_success else 'failure'}: {command}")
        return output

    def wait_until_succeeds(self, command: str, timeout: int = 900) -> str:
        return self._wait_for_status(command, timeout, want_success=True)

    def wait_until_fails(self, command: str, timeout: int = 900) -> str:
        return self._wait_for_status(command, timeout, want_success=False)

    def systemctl(self, q: str, user: str | None = None) -> tuple[int, str]:
        if user is not None:
            q = q.replace("'", "\\'")
            return self.execute(
                f"su -l {user} --shell /bin/sh -c $'XDG_RUNTIME_DIR=/run/user/`id -u` systemctl --user {q}'"
            )
        return self.execute(f"systemctl {q}")

    def start_job(self, jobname: str, user: str | None = None) -> tuple[int, str]:
        return self.systemctl(f"start {jobname}", user)

    def stop_job(self, jobname: str, user: str | None = None) -> tuple[int, str]:
        return self.systemctl(f"stop {jobname}", user)

    def get_unit_info(self, unit: str, user: str | None = None) -> dict[str, str]:
        """Properties of a unit as `systemctl show` prints them."""
        status, lines = self.systemctl(f'--no-pager show "{unit}"', user)
        if status != 0:
            self._raise(
                RequestedAssertionFailed,
                f'retrieving systemctl info for unit "{unit}" failed with exit code {status}',
            )
        pairs = (re.match(r"^([^=]+)=(.*)$", line) for line in lines.split("\n"))
        return {m[1]: m[2] for m in pairs if m}

    def get_unit_property(self, unit: str, property: str, user: str | None = None) -> str:
        return self.get_unit_info(unit, user).get(property, "")

    def require_unit_state(self, unit: str, require_state: str = "active") -> None:
        state = self.get_unit_property(unit, "ActiveState")
        if state != require_state:
            self._raise(
                RequestedAssertionFailed,
                f"Expected unit '{unit}' to to be in state '{require_state}' but it is in state '{state}'",
            )

    def wait_for_unit(self, unit: str, user: str | None = None, timeout: int = 900) -> None:
        """Wait until the unit is active; fail at once if it failed, or is inactive with no job pending."""

        def check(_last: bool) -> bool:
            state = self.get_unit_property(unit, "ActiveState", user)
            if state == "failed":
                self._raise(RequestedAssertionFailed, f'unit "{unit}" reached state "{state}"\n{self._why(unit, user)}')
            if state == "inactive":
                _, jobs = self.systemctl("list-jobs --full 2>&1", user)
                if "No jobs" in jobs and self.get_unit_property(unit, "ActiveState", user) == state:
                    self._raise(
                        RequestedAssertionFailed,
                        f'unit "{unit}" is inactive and there are no pending jobs\n{self._why(unit, user)}',
                    )
            return state == "active"

        self._retry(check, timeout, f"waiting for unit {unit}")

    def _why(self, unit: str, user: str | None) -> str:
        """`systemctl status` of a unit that will not come up and of each unit it requires that is not
        active (a dependency that failed leaves the unit inactive, with its own journal silent)."""
        info = self.get_unit_info(unit, user)
        required = " ".join(info.get(key, "") for key in ("Requires", "Requisite", "BindsTo")).split()
        down = [dep for dep in required if self.get_unit_property(dep, "ActiveState", user) != "active"]
        _, status = self.systemctl(f"status --no-pager --full --lines=25 {' '.join([unit, *down])} 2>&1", user)
        return f"Result={info.get('Result', '')}; required and not active: {down or 'none'}\n{status}"

    def wait_for_file(self, filename: str, timeout: int = 900) -> None:
        self._retry(
            lambda _: self.execute(f"test -e {filename}")[0] == 0, timeout, f"waiting for file '{filename}'"
        )

    def wait_for_open_port(self, port: int, addr: str = "localhost", timeout: int = 900) -> None:
        self._retry(
            lambda _: self.execute(f"nc -z {addr} {port}")[0] == 0,
            timeout,
            f"waiting for TCP port {port} on {addr}",
        )

    def wait_for_closed_port(self, port: int, addr: str = "localhost", timeout: int = 900) -> None:
        self._retry(
            lambda _: self.execute(f"nc -z {addr} {port}")[0] != 0,
            timeout,
            f"waiting for TCP port {port} on {addr} to be closed",
        )
