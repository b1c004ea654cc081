"""`tgi-nix mock` as a workstation user meets it: loopback by default (the images keep TGI's 0.0.0.0),
a --help that describes each flag, one log line when a client goes away."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import pytest

from tgi_nix.cli import main
from tgi_nix.mock.launcher import build_arg_parser
from tgi_nix.mock.transport import Server

from .conftest import REPO


@pytest.mark.parametrize(
    ("args", "hostname"),
    [([], "127.0.0.1"), (["--hostname", "0.0.0.0"], "0.0.0.0"), (["--hostname=::"], "::")],
)
def test_cli_mock_listens_on_loopback_unless_told(
    monkeypatch: pytest.MonkeyPatch, args: list[str], hostname: str
) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr("tgi_nix.mock.main", lambda argv: seen.append(argv) or 0)
    monkeypatch.setenv("HOSTNAME", "container-id")  # as podman sets it: the CLI's default still wins
    assert main(["mock", "--model-id", "org/m", *args]) == 0
    assert build_arg_parser({}).parse_known_args(seen[0])[0].hostname == hostname


def test_images_keep_the_launchers_wildcard_default() -> None:
    """The images run `python3 -m tgi_nix_mock` (the launcher's own default, 0.0.0.0 in a container)."""
    assert build_arg_parser({}).parse_known_args(["--model-id", "org/m"])[0].hostname == "0.0.0.0"
    image = (REPO / "pkgs" / "mock-tgi-image" / "default.nix").read_text()
    assert "-m tgi_nix_mock" in image and "tgi-nix mock" not in image


def test_mock_help_describes_each_flag() -> None:
    proc = subprocess.run([sys.executable, "-m", "tgi_nix.cli", "mock", "--help"], capture_output=True,
                          text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--max-input-tokens MAX_INPUT_TOKENS" in proc.stdout
    assert "as TGI's launcher flag (env MAX_INPUT_TOKENS)" in proc.stdout
    assert "default 0.0.0.0" in proc.stdout


@pytest.mark.parametrize("error", [ConnectionResetError, BrokenPipeError])
def test_a_client_that_goes_away_is_one_line(error: type[OSError]) -> None:
    server = Server(("127.0.0.1", 0), app=None, handler=None)  # type: ignore[arg-type]
    try:
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            try:
                raise error(104, "Connection reset by peer")
            except OSError:
                server.handle_error(None, ("127.0.0.9", 4242))
        assert stderr.getvalue() == f"client 127.0.0.9 closed the connection: {error.__name__}\n"
    finally:
        server.server_close()


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="a check of the git checkout (the package's sources have no .git)")
def test_quickstart_output_is_ignored_by_git() -> None:
    ignored = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", "out/units/x.service"], check=False)
    assert ignored.returncode == 0
    assert "out=${2:-out}" in Path(REPO / "scripts" / "quickstart.sh").read_text()
