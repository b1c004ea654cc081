"""Error hierarchy. Every error a user can cause maps to one exit code in `cli.main`."""

from __future__ import annotations


class TgiNixError(Exception):
    """Base class: a problem the user can fix. Its message is shown without a traceback."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SpecError(TgiNixError):
    """The spec file is missing, unreadable, not TOML, or violates the schema."""

    exit_code = 2


class NixError(TgiNixError):
    """`nix-instantiate` rejected generated Nix or the core failed to evaluate."""

    exit_code = 3


class UnitVerifyError(TgiNixError):
    """`systemd-analyze verify` rejected a rendered unit."""

    exit_code = 3


class ToolMissingError(TgiNixError):
    """A required external program (nix-instantiate, systemd-analyze, qemu, ...) is not installed."""

    exit_code = 4


class CheckFailed(TgiNixError):
    """A runtime check (probe, doctor) found a problem."""

    exit_code = 1


class EndpointError(TgiNixError):
    """A TGI endpoint could not be reached or answered with an error."""

    exit_code = 5
