"""Errors and progress output of the VM harness.

The names follow the NixOS test driver (`RequestedAssertionFailed`, `MachineError`) so that scenario scripts
which catch them read the same under both drivers.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ...errors import TgiNixError, ToolMissingError


class VmError(TgiNixError):
    """The VM harness could not build, boot or talk to a machine."""

    exit_code = 6


class MachineError(VmError):
    """The machine misbehaved: QEMU died, the shell vanished, a boot never finished."""


class MachineCrashed(MachineError):  # noqa: N818
    """QEMU exited while a test was using the machine (the guest kernel panicked, or QEMU died).

    Nothing a test asked for can cause this short of a kernel bug or the host killing QEMU; the
    message carries QEMU's exit status and the last console lines. The VM tests rerun once on this
    error only (python/tests/conftest.py), on a freshly booted machine."""


class RequestedAssertionFailed(VmError):  # noqa: N818 - the NixOS test driver's name
    """A check a test script asked for failed (`succeed`, `fail`, `wait_for_unit`, ...)."""


class MachineTimeout(RequestedAssertionFailed):  # noqa: N818
    """A command or wait ran past its timeout; the command was killed in the guest."""


class HostToolsMissing(ToolMissingError):  # noqa: N818
    """Programs the harness needs on the host (qemu, mmdebstrap, ...) are not installed."""


_T0 = time.monotonic()


def log(msg: str, name: str | None = None) -> None:
    """One progress line on stderr: elapsed seconds since import, optional machine name."""
    prefix = f"[{time.monotonic() - _T0:7.1f}s]" + (f" {name}:" if name else "")
    print(f"{prefix} {msg}", file=sys.stderr, flush=True)


@contextmanager
def stage(title: str) -> Iterator[None]:
    """Log the start and the duration of one build stage."""
    t0 = time.monotonic()
    log(f"{title} …")
    yield
    log(f"{title}: done in {time.monotonic() - t0:.1f} s")
