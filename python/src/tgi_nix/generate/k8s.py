"""Kubernetes manifests for `tgi-nix render-k8s`: a Deployment, a Service and a cache PVC per enabled instance.

The launcher arguments, CDI devices and health-check timings come from the Nix core (the same facts
the systemd units use), so a Kubernetes deployment runs the same TGI command as a NixOS host.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import SpecError
from ..nix.bridge import evaluate
from ..nix.facts import InstanceFacts
from ..spec.models import known_model_size_gb
from ..spec.schema import Instance, Spec

TOKEN_SECRET = "huggingface-tgi-token"
API_KEY = "API_KEY"
TOKEN_KEY = "HF_TOKEN"
DEFAULT_CACHE_SIZE = "100Gi"
# Kubernetes needs a finite startup budget; `startTimeout = "infinity"` gets this one.
INFINITE_START_SECONDS = 24 * 3600
# Label values: at most 63 characters of [A-Za-z0-9_.-], alphanumeric at both ends.
_LABEL_VALUE_RE = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$")
# Object names (RFC 1123 subdomain) and storage quantities, checked before anything is written.
DNS_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
QUANTITY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")


@dataclass(frozen=True)
class K8sOptions:
    """Choices that have no counterpart in the spec (cluster-side names and sizes)."""

    namespace: str | None = None
    gpus_per_instance: int | None = None
    token_secret: str = TOKEN_SECRET
    cache_size: str | None = None
    storage_class: str | None = None
    # instance name -> existing PersistentVolumeClaim; no PVC is rendered for those instances.
    cache_claims: Mapping[str, str] = field(default_factory=dict)


def k8s_quantity(size_bytes: int) -> str:
    """A byte count as a Kubernetes quantity: the largest binary unit that divides it (`1Gi`)."""
    for suffix, factor in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if size_bytes % factor == 0:
            return f"{size_bytes // factor}{suffix}"
    return str(size_bytes)


def _labels(name: str, facts: InstanceFacts) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/name": "huggingface-tgi",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": "inference-server",
        "app.kubernetes.io/part-of": "tgi-nix",
        "app.kubernetes.io/managed-by": "tgi-nix",
    }
    tag = facts.image.tag
    if tag and _LABEL_VALUE_RE.match(tag):
        labels["app.kubernetes.io/version"] = tag
    return labels


def _selector(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "huggingface-tgi", "app.kubernetes.io/instance": name}


def _metadata(name: str, labels: dict[str, str], options: K8sOptions) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if options.namespace:
        meta["namespace"] = options.namespace
    meta["labels"] = labels
    return meta


def device_resources(name: str, inst: Instance, cdi_devices: list[str], options: K8sOptions) -> dict[str, int]:
    """Extended resources for the core's CDI devices: `vendor.com/class=<i>` counts one per device,
    `=all` takes `--gpus-per-instance`, else `numShard`, else 1 (a pod cannot ask for "all")."""
    counts: dict[str, int] = {}
    for device in cdi_devices:
        resource, _, device_name = device.partition("=")
        if device_name == "all":
            wanted = options.gpus_per_instance or inst.num_shard or 1
            if inst.num_shard and wanted < inst.num_shard:
                raise SpecError(
                    f"instances.{name}: numShard ({inst.num_shard}) needs {inst.num_shard} GPUs but "
                    f"--gpus-per-instance is {wanted}; raise --gpus-per-instance or lower numShard"
                )
            counts[resource] = max(counts.get(resource, 0), wanted)
        else:
            counts[resource] = counts.get(resource, 0) + 1
    return counts


def _probe(path: str, period: int, timeout: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


def _env(inst: Instance, options: K8sOptions) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {
            "name": TOKEN_KEY,
            "valueFrom": {
                "secretKeyRef": {
                    "name": options.token_secret,
                    "key": TOKEN_KEY,
                    # With an environmentFile the host deployment has a token: a missing Secret is
                    # an error the pod reports (CreateContainerConfigError) rather than a 401 later.
                    "optional": inst.environment_file is None,
                }
            },
        }
    ]
    if inst.api_key_file is not None:
        # TGI's --api-key from API_KEY, like the host's apiKeyFile; same Secret, required.
        env.append(
            {
                "name": API_KEY,
                "valueFrom": {"secretKeyRef": {"name": options.token_secret, "key": API_KEY, "optional": False}},
            }
        )
    env.extend({"name": key, "value": value} for key, value in sorted(inst.environment.items()))
    return env


def cache_claim_name(name: str, options: K8sOptions) -> str:
    return options.cache_claims.get(name, f"huggingface-tgi-{name}-cache")


def cache_size(inst: Instance, options: K8sOptions) -> str:
    if options.cache_size:
        return options.cache_size
    size = known_model_size_gb(inst.model)
    # Headroom for the hub's temporary files and TGI's .bin -> safetensors conversion.
    return f"{math.ceil(size * 1.25)}Gi" if size is not None else DEFAULT_CACHE_SIZE


def deployment(name: str, inst: Instance, facts: InstanceFacts, options: K8sOptions) -> dict[str, Any]:
    health = facts.health
    startup_budget = facts.start_timeout.sec if facts.start_timeout.sec is not None else INFINITE_START_SECONDS
    resources = device_resources(name, inst, facts.devices.cdi_devices, options)
    labels = _labels(name, facts)

    container: dict[str, Any] = {
        "name": "tgi",
        "image": inst.image,
        "imagePullPolicy": "Always" if inst.pull in ("always", "newer") else "IfNotPresent",
        "args": list(facts.launcher_args),
        "ports": [{"name": "http", "containerPort": facts.network.container_port, "protocol": "TCP"}],
        "env": _env(inst, options),
        # The port opens only once the model is loaded: the startup probe covers download and
        # loading (startTimeout), then liveness mirrors the podman health check.
        "startupProbe": _probe(
            health.path,
            health.startup_interval_sec,
            health.timeout_sec,
            math.ceil(startup_budget / health.startup_interval_sec),
        ),
        "readinessProbe": _probe(health.path, 10, health.timeout_sec, 3),
        "livenessProbe": _probe(health.path, health.interval_sec, health.timeout_sec, health.retries),
        "volumeMounts": [
            {"name": "cache", "mountPath": facts.paths.container_cache},
            {"name": "shm", "mountPath": "/dev/shm"},
        ],
        "securityContext": {
            # Not runAsNonRoot: TGI fails as a non-root user inside its image (TGI issue #3082).
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if resources:
        container["resources"] = {"limits": dict(resources)}

    pod_spec: dict[str, Any] = {}
    if facts.devices.nvidia:
        pod_spec["runtimeClassName"] = "nvidia"
    pod_spec.update(
        {
            "automountServiceAccountToken": False,
            # Service links would inject <SVC>_PORT variables into TGI's environment.
            "enableServiceLinks": False,
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "terminationGracePeriodSeconds": facts.container.stop_timeout_sec,
            "containers": [container],
            "volumes": [
                {"name": "cache", "persistentVolumeClaim": {"claimName": cache_claim_name(name, options)}},
                {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": k8s_quantity(_shm_bytes(facts))}},
            ],
        }
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(facts.unit_name, labels, options),
        "spec": {
            "replicas": 1,
            # GPUs and a ReadWriteOnce cache cannot be held by two pods: replace, never overlap.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": _selector(name)},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def _shm_bytes(facts: InstanceFacts) -> int:
    if facts.container.shm_size_bytes is None:  # the core's rules reject such a spec
        raise SpecError(f"instances.{facts.name}.shmSize: {facts.container.shm_size!r} is not a size")
    return facts.container.shm_size_bytes


def service(name: str, inst: Instance, facts: InstanceFacts, options: K8sOptions) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(facts.unit_name, _labels(name, facts), options),
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(name),
            "ports": [{"name": "http", "port": inst.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def cache_claim(name: str, inst: Instance, facts: InstanceFacts, options: K8sOptions) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": cache_size(inst, options)}},
    }
    if options.storage_class:
        spec["storageClassName"] = options.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(cache_claim_name(name, options), _labels(name, facts), options),
        "spec": spec,
    }


def render_objects(spec: Spec, core_instances: Mapping[str, InstanceFacts], options: K8sOptions) -> dict[
    str, list[dict[str, Any]]
]:
    """File name -> Kubernetes objects, for every enabled instance (in apply order: PVC first)."""
    unknown = sorted(set(options.cache_claims) - set(spec.enabled()))
    if unknown:
        raise SpecError(f"--cache-claim names instances that are not enabled in the spec: {', '.join(unknown)}")
    files: dict[str, list[dict[str, Any]]] = {}
    for name, inst in sorted(spec.enabled().items()):
        if inst.model.startswith("/"):
            raise SpecError(
                f"instances.{name}.model is a host path ({inst.model}); a pod cannot see it. "
                "Use a Hugging Face model id for Kubernetes"
            )
        facts = core_instances[name]
        objects = [] if name in options.cache_claims else [cache_claim(name, inst, facts, options)]
        objects += [deployment(name, inst, facts, options), service(name, inst, facts, options)]
        files[f"{facts.unit_name}.yaml"] = objects
    return files


class _Dumper(yaml.SafeDumper):
    """Writes shared sub-objects (the labels) in full instead of as `&id001` anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(objects: list[dict[str, Any]], source: str) -> str:
    header = f"# Generated by `tgi-nix render-k8s` from {source}. Do not edit.\n"
    docs = [yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False) for obj in objects]
    return header + "---\n" + "---\n".join(docs)


def render_k8s(spec: Spec, source: str, options: K8sOptions) -> dict[str, str]:
    core = evaluate(spec, source=source)
    return {
        file: to_yaml(objects, source)
        for file, objects in render_objects(spec, core.instances, options).items()
    }
