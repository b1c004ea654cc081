"""How an instance fits a pod for `render-k8s`: the operator's choices (K8sOptions), GPU counts, sizes
(cache PVC, memory), the startup budget within the API's bounds, and which spec options a pod refuses
(`refusals`) or renders only approximately (`approximations`, shown as notes)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import SpecError
from ..nix.facts import InstanceFacts
from ..spec.models import estimated_model_size_gb
from ..spec.schema import Instance

TOKEN_SECRET = "huggingface-tgi-token"
DEFAULT_CACHE_SIZE = "100Gi"
# The smallest cache PVC: a small model's weights plus TGI's .bin -> safetensors conversion.
MIN_CACHE_GB = 2
DEFAULT_CPU = "2"
# Host RAM a GPU pod needs next to its GPUs (tokenizers, the router, loading); a CPU pod holds the
# weights in RAM: their size x 1.5, at least this much.
DEFAULT_GPU_MEMORY = "16Gi"
MIN_CPU_MEMORY_GB = 4
UNKNOWN_CPU_MEMORY = "32Gi"
# Kubernetes needs a finite startup budget; `startTimeout = "infinity"` gets this one.
INFINITE_START_SECONDS = 24 * 3600
# Probe counts are int32 in the Kubernetes API.
INT32_MAX = 2**31 - 1
# Options a pod has no counterpart for: refused unless the operator drops them (--drop).
DROPPABLE = ("imageFile", "extraPodmanArgs")


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
    # CPU request of every pod; memory request and limit (None: from the model, see pod_memory)
    cpu: str = DEFAULT_CPU
    memory: str | None = None
    # spec options (DROPPABLE) to render without instead of refusing
    drop: frozenset[str] = frozenset()


def device_resources(name: str, inst: Instance, cdi_devices: list[str], options: K8sOptions) -> dict[str, int]:
    """Extended resources for the core's CDI devices: `vendor.com/class=<i>` counts one per device,
    `=all` takes `--gpus-per-instance`, else `numShard`; with neither it is refused (a pod asks for
    a count, and "all" of a node is no count)."""
    counts: dict[str, int] = {}
    for device in cdi_devices:
        resource, _, device_name = device.partition("=")
        if device_name == "all":
            wanted = options.gpus_per_instance or inst.num_shard
            if wanted is None:
                option = "gpus" if resource == "nvidia.com/gpu" and inst.gpus == "all" else "cdiDevices"
                raise SpecError(
                    f"instances.{name}.{option}: {device} has no count on Kubernetes (a pod asks for a number of "
                    f"{resource}); pass --gpus-per-instance N or set numShard"
                )
            if inst.num_shard and wanted < inst.num_shard:
                raise SpecError(
                    f"instances.{name}: numShard ({inst.num_shard}) needs {inst.num_shard} GPUs but "
                    f"--gpus-per-instance is {wanted}; raise --gpus-per-instance or lower numShard"
                )
            counts[resource] = max(counts.get(resource, 0), wanted)
        else:
            counts[resource] = counts.get(resource, 0) + 1
    return counts


def cache_size(name: str, inst: Instance, options: K8sOptions, notes: list[str]) -> str:
    if options.cache_size:
        return options.cache_size
    estimate = estimated_model_size_gb(inst.model)
    if estimate is None:
        notes.append(
            f"instances.{name}.model: size of {inst.model} unknown; its cache PVC requests {DEFAULT_CACHE_SIZE} "
            "(pass --cache-size to size it)"
        )
        return DEFAULT_CACHE_SIZE
    # Headroom for the hub's temporary files and TGI's .bin -> safetensors conversion.
    return f"{max(MIN_CACHE_GB, math.ceil(estimate[0] * 1.25))}Gi"


def pod_memory(inst: Instance, facts: InstanceFacts, options: K8sOptions) -> str:
    """Memory request (and limit) of the pod: --memory, else DEFAULT_GPU_MEMORY next to GPUs, else
    the weights x 1.5 (a CPU server holds them in RAM)."""
    if options.memory:
        return options.memory
    if facts.devices.cdi_devices:
        return DEFAULT_GPU_MEMORY
    estimate = estimated_model_size_gb(inst.model)
    if estimate is None:
        return UNKNOWN_CPU_MEMORY
    return f"{max(MIN_CPU_MEMORY_GB, math.ceil(estimate[0] * 1.5))}Gi"


def startup_failure_threshold(name: str, facts: InstanceFacts, notes: list[str]) -> int:
    """Checks of the startup probe that cover startTimeout (infinity: a day), within int32."""
    period = facts.health.startup_interval_sec
    if facts.start_timeout.sec is None:
        notes.append(
            f"instances.{name}.startTimeout: infinity has no Kubernetes counterpart; the startup probe allows "
            f"{INFINITE_START_SECONDS // 3600} h"
        )
        budget = INFINITE_START_SECONDS
    else:
        budget = facts.start_timeout.sec
    wanted = math.ceil(budget / period)
    if wanted > INT32_MAX:
        notes.append(
            f"instances.{name}.startTimeout: {facts.start_timeout.text} is more than a startup probe counts "
            f"(failureThreshold <= {INT32_MAX} checks every {period} s); capped at that, about "
            f"{INT32_MAX * period // (365 * 86400)} years"
        )
        return INT32_MAX
    return wanted


def refusals(name: str, inst: Instance, options: K8sOptions) -> list[str]:
    """Options with no pod counterpart that the operator did not --drop."""
    found: list[str] = []
    if inst.model.startswith("/"):
        found.append(
            f"instances.{name}.model is a host path ({inst.model}); a pod cannot see it. "
            "Use a Hugging Face model id for Kubernetes"
        )
    if inst.image_file is not None and "imageFile" not in options.drop:
        found.append(
            f"instances.{name}.imageFile: a cluster pulls {inst.image} from a registry and cannot load a host "
            "archive; push the image to a registry the cluster reaches (set image to it), then pass --drop imageFile"
        )
    if inst.extra_podman_args and "extraPodmanArgs" not in options.drop:
        found.append(
            f"instances.{name}.extraPodmanArgs: podman flags ({' '.join(inst.extra_podman_args)}) have no pod "
            "counterpart; express them in the manifests (resources, securityContext, volumes), then pass "
            "--drop extraPodmanArgs"
        )
    return found


def approximations(name: str, inst: Instance, facts: InstanceFacts) -> list[str]:
    """Options a pod renders only approximately: one note each."""
    notes: list[str] = []
    if not facts.network.loopback:
        notes.append(
            f"instances.{name}.listenAddress: {inst.listen_address} published the host port beyond the host; the "
            "Service is ClusterIP (in-cluster only): add an Ingress or a LoadBalancer Service to expose it"
        )
    if inst.allow_gpu_sharing:
        notes.append(
            f"instances.{name}.allowGpuSharing: the device plugin gives each pod whole GPUs of its own; sharing "
            "needs GPU time-slicing or MIG configured in the cluster"
        )
    if inst.user is not None:
        notes.append(
            f"instances.{name}.user: a pod has no host user of its own; it runs with a user namespace "
            "(hostUsers: false) like every rootless instance, TGI as the namespace's root (TGI fails as "
            "another user, TGI #3082)"
        )
    if inst.cache_dir is not None:
        notes.append(f"instances.{name}.cacheDir: a host path; the pod caches in its PersistentVolumeClaim")
    if facts.model.downloaded and "download_stall_timeout" in inst.model_fields_set:
        notes.append(
            f"instances.{name}.downloadStallTimeout: the model initContainer has no stall detection; a stalled "
            "download keeps the pod in Init until you delete it"
        )
    return notes


