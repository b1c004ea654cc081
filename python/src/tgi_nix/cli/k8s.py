"""`tgi-nix render-k8s`: Kubernetes manifests for a spec (rendered by `generate.k8s`)."""

from __future__ import annotations

from pathlib import Path

import click

from ..fsutil import write_tree_atomic
from ..generate.k8s import API_KEY, CPU_RE, DNS_NAME_RE, QUANTITY_RE, TOKEN_KEY, render_k8s
from ..generate.k8s_fit import (
    DEFAULT_CACHE_SIZE,
    DEFAULT_CPU,
    DEFAULT_GPU_MEMORY,
    DROPPABLE,
    TOKEN_SECRET,
    K8sOptions,
)
from ..spec.loader import load_spec


def _dns_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not DNS_NAME_RE.match(value):
        raise click.BadParameter(f"{value!r} is not a Kubernetes name (lowercase letters, digits, '-', '.')")
    return value


def _quantity(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not QUANTITY_RE.match(value):
        raise click.BadParameter(f"{value!r} is not a quantity such as 200Gi or 16Gi")
    return value


def _cpu(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not CPU_RE.match(value):
        raise click.BadParameter(f"{value!r} is not a CPU quantity such as 2, 0.5 or 500m")
    return value


def _parse_claims(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    claims: dict[str, str] = {}
    for value in values:
        name, sep, claim = value.partition("=")
        if not sep or not name or not DNS_NAME_RE.match(claim):
            raise click.BadParameter(f"{value!r}: write INSTANCE=CLAIM with a Kubernetes claim name")
        claims[name] = claim
    return claims


@click.command("render-k8s")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory for one <unit>.yaml (PVC, Deployment, Service) per enabled instance.")
@click.option("--namespace", default=None, callback=_dns_name, help="metadata.namespace of every object (default: none).")
@click.option("--gpus-per-instance", type=click.IntRange(min=1, max=1024), default=None,
              help='GPU count for instances with gpus = "all" (default: numShard; with neither, refused).')
@click.option("--token-secret", default=TOKEN_SECRET, show_default=True, callback=_dns_name,
              help=f"Secret holding the Hugging Face token under the key {TOKEN_KEY}. An apiKeyFile instance reads "
              f"{API_KEY} from its own Secret, <unit>-api-key.")
@click.option("--cpu", default=DEFAULT_CPU, show_default=True, callback=_cpu,
              help="CPU request of each pod (no CPU limit).")
@click.option("--memory", default=None, callback=_quantity,
              help=f"Memory request and limit of each pod (default: {DEFAULT_GPU_MEMORY} with GPUs, else the "
              "model's weights x 1.5, at least 4Gi).")
@click.option("--drop", "drop", multiple=True, type=click.Choice(DROPPABLE),
              help="Render without this option where a spec sets it (it has no pod counterpart; refused otherwise).")
@click.option("--cache-size", default=None, callback=_quantity,
              help=f"Size of each cache PVC (default: the model's size + 25% when known, else {DEFAULT_CACHE_SIZE}).")
@click.option("--storage-class", default=None, callback=_dns_name, help="storageClassName of the cache PVCs.")
@click.option("--cache-claim", "cache_claims", multiple=True, metavar="INSTANCE=CLAIM", callback=_parse_claims,
              help="Mount an existing PersistentVolumeClaim for INSTANCE instead of rendering one.")
def render_k8s_cmd(
    spec: Path,
    output: Path,
    namespace: str | None,
    gpus_per_instance: int | None,
    token_secret: str,
    cache_size: str | None,
    storage_class: str | None,
    cache_claims: dict[str, str],
    cpu: str,
    memory: str | None,
    drop: tuple[str, ...],
) -> None:
    """Render Kubernetes manifests (Deployment, Service, cache PVC) for SPEC's enabled instances."""
    options = K8sOptions(
        namespace=namespace,
        gpus_per_instance=gpus_per_instance,
        token_secret=token_secret,
        cache_size=cache_size,
        storage_class=storage_class,
        cache_claims=cache_claims,
        cpu=cpu,
        memory=memory,
        drop=frozenset(drop),
    )
    rendered = render_k8s(load_spec(spec), spec.name, options)
    write_tree_atomic(output, rendered.files)
    for warning in rendered.warnings:
        click.echo(f"warning: {warning}", err=True)
    for note in rendered.notes:
        click.echo(f"note: {note}", err=True)
    for rel in sorted(rendered.files):
        click.echo(str(output / rel))
