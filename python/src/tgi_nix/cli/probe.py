"""`tgi-nix probe URL|SPEC`: check TGI endpoints (the checks are in `ops.probe`)."""

from __future__ import annotations

import json
from pathlib import Path

import click


def _read_api_key(path: Path | None) -> str | None:
    if path is None:
        return None
    key = path.read_text().strip()
    if not key:
        raise click.BadParameter(f"{path} is empty", param_hint="--api-key-file")
    return key


@click.command("probe")
@click.argument("target", metavar="URL|SPEC")
@click.option("--timeout", type=click.FloatRange(min=0), default=600.0, show_default=True,
              help="Seconds to wait for a loading model (/health 503) to become healthy.")
@click.option("--wait-for-start", is_flag=True,
              help="Also wait (up to --timeout) while nothing listens on the port, e.g. right after a deploy.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report instead of tables.")
@click.option("--api-key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File holding the bearer token of an instance started with --api-key.")
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

    from ..ops.probe import BadTarget, exit_code, probe, render, targets_from

    api_key = _read_api_key(api_key_file)
    try:
        targets = targets_from(target, model)
    except BadTarget as err:
        raise click.BadParameter(str(err), param_hint="URL|SPEC") from None
    err_console = Console(stderr=True)
    reports = [probe(t, api_key=api_key, timeout=timeout, wait_for_start=wait_for_start,
                     max_new_tokens=max_new_tokens, request_timeout=request_timeout, console=err_console)
               for t in targets]
    code = exit_code(reports)
    if as_json:
        click.echo(json.dumps({"ok": code == 0, "exit_code": code,
                               "endpoints": [report.as_json() for report in reports]}, indent=2))
    else:
        render(reports, Console())
    return code
