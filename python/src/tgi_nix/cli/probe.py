"""`tgi-nix probe URL|SPEC`: check TGI endpoints (the checks are in `ops.probe`)."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("probe")
@click.argument("target", metavar="URL|SPEC")
@click.option("--timeout", type=click.FloatRange(min=0), default=600.0, show_default=True,
              help="Seconds to wait for a loading model (/health 503) to become healthy.")
@click.option("--wait-for-start", is_flag=True,
              help="Also wait (up to --timeout) while nothing listens on the port, e.g. right after a deploy.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report instead of tables.")
@click.option("--api-key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File whose first line is the bearer token (default: each instance's apiKeyFile of a SPEC).")
@click.option("--model", default=None, help="Model id the URL must serve (a SPEC names its own).")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=16, show_default=True,
              help="Tokens per generation request.")
@click.option("--request-timeout", type=click.FloatRange(min=0, min_open=True), default=60.0,
              show_default=True, help="Seconds one request may take.")
def probe_cmd(target: str, timeout: float, wait_for_start: bool, as_json: bool, api_key_file: Path | None,
              model: str | None, max_new_tokens: int, request_timeout: float) -> int:
    """Check TGI endpoints: a URL, or every enabled instance of a SPEC file.

    Exit status: 0 when every check passes, 1 when one fails, 5 when an endpoint cannot be reached.
    """
    from rich.console import Console

    from ..errors import SpecError
    from ..ops.keyfile import BadKeyFile, read_api_key
    from ..ops.probe import BadTarget, exit_code, probe, render, targets_from

    try:
        api_key = read_api_key(api_key_file) if api_key_file is not None else None
    except BadKeyFile as err:
        raise click.BadParameter(str(err), param_hint="--api-key-file") from None
    try:
        targets = targets_from(target, model)
    except BadTarget as err:
        raise click.BadParameter(str(err), param_hint="URL|SPEC") from None
    # Each instance's own key (apiKeyFile), read before any request; --api-key-file overrides them.
    keys: dict[str, str | None] = {}
    for t in targets:
        try:
            keys[t.name] = api_key or (read_api_key(t.api_key_file) if t.api_key_file else None)
        except BadKeyFile as err:
            raise SpecError(f"instances.{t.name}.apiKeyFile: {err}; run probe as root or pass --api-key-file") from None
    err_console = Console(stderr=True)
    reports = [probe(t, api_key=keys[t.name], timeout=timeout, wait_for_start=wait_for_start,
                     max_new_tokens=max_new_tokens, request_timeout=request_timeout, console=err_console)
               for t in targets]
    code = exit_code(reports)
    if as_json:
        click.echo(json.dumps({"ok": code == 0, "exit_code": code,
                               "endpoints": [report.as_json() for report in reports]}, indent=2))
    else:
        render(reports, Console())
    return code
