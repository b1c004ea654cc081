"""Kubernetes manifests for `tgi-nix render-k8s`: a Deployment, a Service and a cache PVC per enabled instance.

The launcher arguments, CDI devices and health-check timings come from the Nix core (the same facts
the systemd units use), so a Kubernetes deployment runs the same TGI command as a NixOS host, on the
core's unprivileged pod port. Every spec option is rendered, or refused with a message, or (where a
pod has only an approximation) rendered with a note:

- model, revision, numShard, quantize, dtype, max*, trustRemoteCode, usageStats, extraArgs: the launcher args
  (a local model path is refused: a pod cannot see it)
- image, pull: the container image and imagePullPolicy; imageFile is refused (a cluster pulls from a
  registry) unless `--drop imageFile`
- port: the Service port; listenAddress and openFirewall: a ClusterIP Service (a note when the host
  deployment was reachable from outside)
- gpus, cdiDevices: extended resources (`gpus = "all"` needs --gpus-per-instance or numShard: a
  pod asks for a count); allowGpuSharing: a note (the device plugin hands out whole GPUs)
- shmSize: a memory emptyDir on /dev/shm; cacheDir: the cache PVC (sized from the model)
- environmentFile: HF_TOKEN from the token Secret; apiKeyFile: API_KEY from the instance's own Secret
- environment: plain env; startTimeout: the startupProbe (bounded: failureThreshold is an int32)
- downloadModel: an initContainer running the image's downloader (the model unit's command) and
  HF_HUB_OFFLINE=1 on the server; downloadStallTimeout: a note when set (a pod has no stall detection)
- extraPodmanArgs (and allowUnsafePodmanArgs): refused unless `--drop extraPodmanArgs`
- user, uid: a note (rootless podman has no pod counterpart)
- CPU and memory: requests (and a memory limit) from --cpu and --memory, with defaults
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from ..errors import SpecError
from ..nix.bridge import evaluate
from ..nix.facts import InstanceFacts
from ..spec.schema import Instance, Spec
from .k8s_fit import (
    K8sOptions,
    approximations,
    cache_size,
    device_resources,
    pod_memory,
    refusals,
    startup_failure_threshold,
)

API_KEY = "API_KEY"
TOKEN_KEY = "HF_TOKEN"
# Label values: at most 63 characters of [A-Za-z0-9_.-], alphanumeric at both ends.
_LABEL_VALUE_RE = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$")
# Object names (RFC 1123 subdomain) and storage quantities, checked before anything is written.
DNS_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
QUANTITY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
CPU_RE = re.compile(r"^([1-9][0-9]{0,5}m|[0-9]{1,4}(\.[0-9]{1,3})?)$")


@dataclass
class Rendered:
    """render-k8s' result: file name -> YAML, and what the operator should know (option: note)."""

    files: dict[str, str]
    notes: list[str]
    warnings: list[str]


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


def _probe(path: str, period: int, timeout: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


def api_key_secret(facts: InstanceFacts) -> str:
    """The Secret holding this instance's own API key (its apiKeyFile's first line) as API_KEY."""
    return f"{facts.unit_name}-api-key"


def _env(inst: Instance, facts: InstanceFacts, options: K8sOptions) -> list[dict[str, Any]]:
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
        # TGI's --api-key from API_KEY, like the host's apiKeyFile: each instance its own key.
        env.append(
            {
                "name": API_KEY,
                "valueFrom": {"secretKeyRef": {"name": api_key_secret(facts), "key": API_KEY, "optional": False}},
            }
        )
    env.extend({"name": key, "value": value} for key, value in sorted(inst.environment.items()))
    return env


def _security_context() -> dict[str, Any]:
    return {
        # Not runAsNonRoot: TGI fails as a non-root user inside its image (TGI issue #3082).
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }


def download_container(inst: Instance, facts: InstanceFacts, options: K8sOptions) -> dict[str, Any]:
    """The model unit's download as an initContainer: the image's own downloader (the core's
    arguments) into the cache claim, with the token; the server then starts offline."""
    return {
        "name": "model",
        "image": inst.image,
        "imagePullPolicy": "Always" if inst.pull in ("always", "newer") else "IfNotPresent",
        "command": ["text-generation-server"],
        "args": list(facts.model.downloader_args),
        "env": _env(inst, facts, options),
        "volumeMounts": [{"name": "cache", "mountPath": facts.paths.container_cache}],
        "securityContext": _security_context(),
    }


def cache_claim_name(facts: InstanceFacts, options: K8sOptions) -> str:
    return options.cache_claims.get(facts.name, f"{facts.unit_name}-cache")


def deployment(
    name: str, inst: Instance, facts: InstanceFacts, options: K8sOptions, notes: list[str]
) -> dict[str, Any]:
    health = facts.health
    devices = device_resources(name, inst, facts.devices.cdi_devices, options)
    labels = _labels(name, facts)
    memory = pod_memory(inst, facts, options)

    container: dict[str, Any] = {
        "name": "tgi",
        "image": inst.image,
        "imagePullPolicy": "Always" if inst.pull in ("always", "newer") else "IfNotPresent",
        # The core's launcher args for a pod: TGI on an unprivileged port (no capability needed).
        "args": list(facts.kubernetes.launcher_args),
        "ports": [{"name": "http", "containerPort": facts.kubernetes.container_port, "protocol": "TCP"}],
        "env": _env(inst, facts, options)
        + [{"name": key, "value": value} for key, value in sorted(facts.model.server_environment.items())],
        # The port opens only once the model is loaded: the startup probe covers loading (and
        # TGI's own download without downloadModel: startTimeout), then liveness mirrors the
        # podman health check.
        "startupProbe": _probe(
            health.path,
            health.startup_interval_sec,
            health.timeout_sec,
            startup_failure_threshold(name, facts, notes),
        ),
        "readinessProbe": _probe(health.path, 10, health.timeout_sec, 3),
        "livenessProbe": _probe(health.path, health.interval_sec, health.timeout_sec, health.retries),
        "volumeMounts": [
            {"name": "cache", "mountPath": facts.paths.container_cache},
            {"name": "shm", "mountPath": "/dev/shm"},
        ],
        "securityContext": _security_context(),
    }
    # No CPU limit (it throttles tokenization and the router); memory limit = request, so the pod
    # is not the first one evicted under memory pressure.
    container["resources"] = {
        "requests": {"cpu": options.cpu, "memory": memory, **devices},
        "limits": {"memory": memory, **devices},
    }

    pod_spec: dict[str, Any] = {}
    if facts.devices.nvidia:
        pod_spec["runtimeClassName"] = "nvidia"
    pod_spec.update(
        {
            "automountServiceAccountToken": False,
            # Service links would inject <SVC>_PORT variables into TGI's environment.
            "enableServiceLinks": False,
            # fsGroup 0: the cache claim is group-writable for TGI's root (uid 0, gid 0) whoever
            # created the volume; only its top directory is checked when ownership already matches.
            "securityContext": {
                "seccompProfile": {"type": "RuntimeDefault"},
                "fsGroup": 0,
                "fsGroupChangePolicy": "OnRootMismatch",
            },
            # The pod's counterpart of rootless podman (the default): the container's root is an
            # unprivileged uid on the node (Kubernetes user namespaces, on by default since 1.33).
            **({"hostUsers": False} if facts.rootless else {}),
            "terminationGracePeriodSeconds": facts.container.stop_timeout_sec,
            # The model unit's download, before the server (downloadModel).
            **({"initContainers": [download_container(inst, facts, options)]} if facts.model.downloaded else {}),
            "containers": [container],
            "volumes": [
                {"name": "cache", "persistentVolumeClaim": {"claimName": cache_claim_name(facts, options)}},
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


def cache_claim(
    name: str, inst: Instance, facts: InstanceFacts, options: K8sOptions, notes: list[str]
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": cache_size(name, inst, options, notes)}},
    }
    if options.storage_class:
        spec["storageClassName"] = options.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(cache_claim_name(facts, options), _labels(name, facts), options),
        "spec": spec,
    }


def render_objects(
    spec: Spec, core_instances: Mapping[str, InstanceFacts], options: K8sOptions, notes: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """File name -> Kubernetes objects, for every enabled instance (in apply order: PVC first).
    Every refusal of every instance in one SpecError; approximations appended to `notes`."""
    unknown = sorted(set(options.cache_claims) - set(spec.enabled()))
    if unknown:
        raise SpecError(f"--cache-claim names instances that are not enabled in the spec: {', '.join(unknown)}")
    refused = [line for name, inst in sorted(spec.enabled().items()) for line in refusals(name, inst, options)]
    if refused:
        raise SpecError("\n".join(refused))
    files: dict[str, list[dict[str, Any]]] = {}
    for name, inst in sorted(spec.enabled().items()):
        facts = core_instances[name]
        notes.extend(approximations(name, inst, facts))
        objects = [] if name in options.cache_claims else [cache_claim(name, inst, facts, options, notes)]
        objects += [deployment(name, inst, facts, options, notes), service(name, inst, facts, options)]
        files[f"{facts.unit_name}.yaml"] = objects
    return files


def secret_hints(inst: Instance, facts: InstanceFacts, options: K8sOptions) -> list[str]:
    """The Secrets a file's pod reads, as the commands that create them (no secret in the manifests)."""
    # From the files themselves (stdin, not argv): no key in a command line or shell history.
    if inst.environment_file is not None:
        hints = [f"kubectl create secret generic {options.token_secret} --from-env-file={inst.environment_file}"]
    else:
        hints = [f"(optional, for gated models) a Secret {options.token_secret} with the key {TOKEN_KEY}"]
    if inst.api_key_file is not None:
        hints.append(
            f"head -n 1 {inst.api_key_file} | tr -d '\\n' | "
            f"kubectl create secret generic {api_key_secret(facts)} --from-file={API_KEY}=/dev/stdin"
        )
    return hints


class _Dumper(yaml.SafeDumper):
    """Writes shared sub-objects (the labels) in full instead of as `&id001` anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(objects: list[dict[str, Any]], source: str, secrets: Sequence[str] = ()) -> str:
    header = f"# Generated by `tgi-nix render-k8s` from {source}. Do not edit.\n"
    if secrets:
        header += "# Secrets the pod reads, created beforehand:\n" + "".join(f"#   {line}\n" for line in secrets)
    docs = [yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False) for obj in objects]
    return header + "---\n" + "---\n".join(docs)


def render_k8s(spec: Spec, source: str, options: K8sOptions) -> Rendered:
    core = evaluate(spec, source=source)
    notes: list[str] = []
    objects = render_objects(spec, core.instances, options, notes)
    files = {}
    for name, inst in sorted(spec.enabled().items()):
        facts = core.instances[name]
        file = f"{facts.unit_name}.yaml"
        files[file] = to_yaml(objects[file], source, secret_hints(inst, facts, options))
    return Rendered(files=files, notes=notes, warnings=[str(w) for w in core.warnings])
