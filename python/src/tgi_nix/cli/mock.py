"""`tgi-nix mock`: the TGI-compatible mock server, with the launcher's own arguments."""

from __future__ import annotations

import os
from pathlib import Path

import click


@click.command(
    "mock",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
    add_help_option=False,
)
@click.argument("launcher_args", nargs=-1, type=click.UNPROCESSED)
def mock_cmd(launcher_args: tuple[str, ...]) -> int:
    """Run the TGI mock: `tgi-nix mock --port 8080 --model-id org/name [--load-delay 5]`.

    Takes TGI's launcher flags (and their env vars) so a unit's argv works unchanged; see
    `tgi-nix mock --help` for the mock-only options.
    """
    from ..mock import main as mock_main

    # In its image the mock caches under /data like TGI; on a workstation keep it in the user's cache.
    os.environ.setdefault("HF_HOME", str(Path.home() / ".cache" / "tgi-nix" / "mock-hf-home"))
    args = list(launcher_args)
    # On a workstation the mock answers on loopback, as the product's instances do (listenAddress
    # 127.0.0.1); TGI's launcher (and the mock images, which run `python3 -m tgi_nix_mock`) default to
    # 0.0.0.0 inside a container. An explicit --hostname chooses.
    if not any(a == "--hostname" or a.startswith("--hostname=") for a in args) and "--help" not in args:
        args = ["--hostname", "127.0.0.1", *args]
    return mock_main(args)
