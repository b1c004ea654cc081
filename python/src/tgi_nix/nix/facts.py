"""The core's facts as one typed model (read from `core/units.nix`'s per-instance attribute set).

Every tool that needs to know how an instance runs (render-k8s, doctor, probe, the VM scenarios,
the benchmarks) reads these fields; nothing parses argv or unit text back. Field names are the
core's (camelCase on the Nix side); `extra="forbid"` makes a fact the core adds or drops fail
loudly here instead of going unnoticed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class _Facts(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid")


class Finding(_Facts):
    """A rule the spec breaks (or a warning): `path` is `instances.<name>.<option>`."""

    path: str = Field(description="Option path below services.huggingface-tgi.")
    message: str = Field(description="What is wrong and how to fix it.")

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class Network(_Facts):
    listen_address: str = Field(description="The host address the port is published on.")
    port: int = Field(description="The published host port.")
    container_port: int = Field(description="The port TGI listens on inside the container.")
    wildcard: bool = Field(description="Published on every address of the host (0.0.0.0 or ::).")
    reachable_host: str = Field(description="The address this host reaches the instance at.")
    endpoint: str = Field(description="host:port (IPv6 in brackets) to connect to from this host.")
    url: str = Field(description="The instance's base URL from this host.")
    family: Literal["ipv4", "ipv6"] = Field(description="The listen address's family.")
    loopback: bool = Field(description="The listen address is a loopback address.")
    publish: str = Field(description="podman's --publish value.")
    open_firewall: bool = Field(description="Whether the firewall opens the port.")
    firewall_ports: list[int] = Field(description="TCP ports to open in the firewall.")


class Image(_Facts):
    reference: str = Field(description="The image reference as configured.")
    name: str = Field(description="The reference without tag and digest.")
    registry: str | None = Field(description="The registry host (with port), None for Docker Hub names.")
    repository: str = Field(description="The path below the registry.")
    tag: str | None = Field(description="The tag, if any.")
    digest: str | None = Field(description="The sha256 digest, if pinned by digest.")
    version: str = Field(description="The digest, else the tag, else 'latest'.")
    pinned: bool = Field(description="Pinned by a tag other than latest or by a digest.")
    pull: str = Field(description="The image unit's pull policy.")
    file: str | None = Field(description="An image archive loaded instead of pulling.")


class Health(_Facts):
    path: str = Field(description="TGI's health route.")
    command: str = Field(description="The health check run inside the container.")
    interval_sec: int = Field(description="Seconds between liveness checks.")
    timeout_sec: int = Field(description="Seconds a check may take.")
    retries: int = Field(description="Failed checks before the container is unhealthy.")
    startup_interval_sec: int = Field(
        description="Seconds between render-k8s' startupProbe checks (podman's startup check runs at interval_sec)."
    )
    startup_timeout_sec: int = Field(description="Seconds a startup check may take.")
    on_failure: str = Field(description="What podman does to an unhealthy container.")


class StartTimeout(_Facts):
    text: str = Field(description="startTimeout as written (TimeoutStartSec=).")
    sec: int | None = Field(description="Whole seconds, None for infinity (or an invalid span).")
    infinite: bool = Field(description="startTimeout is infinity.")


class Devices(_Facts):
    gpus: Literal["all"] | list[int] | None = Field(description="The gpus option.")
    cdi_devices: list[str] = Field(description="Every CDI device passed with --device.")
    nvidia: bool = Field(description="The instance uses NVIDIA GPUs.")


class Paths(_Facts):
    cache_dir: str = Field(description="Host directory mounted at /data.")
    runtime_dir: str = Field(description="The main unit's RuntimeDirectory.")
    cid_file: str = Field(description="podman's --cidfile.")
    container_cache: str = Field(description="Where the cache is mounted in the container.")


class Secrets(_Facts):
    environment_file: str | None = Field(description="Root-only file with HF_TOKEN (environmentFile).")
    api_key_file: str | None = Field(description="Root-only API key file (apiKeyFile).")
    podman_environment_file: str | None = Field(description="The env file podman reads (a user-only copy when rootless).")
    api_key_environment_file: str | None = Field(description="The API_KEY env file written at each start.")


class PodmanUser(_Facts):
    name: str = Field(description="The system user that runs a rootless instance's podman.")
    uid: int = Field(description="Its uid (and gid).")
    home: str = Field(description="Its home: container storage.")
    runtime_dir: str = Field(description="Its XDG_RUNTIME_DIR.")
    manager: str = Field(description="Its systemd user manager unit.")


class StallTimeout(_Facts):
    text: str = Field(description="downloadStallTimeout as written.")
    sec: int = Field(description="Whole seconds without a new byte before the model unit fails.")


class Model(_Facts):
    id: str = Field(description="Hub id or local path.")
    revision: str | None = Field(description="The revision, if pinned.")
    local: bool = Field(description="A local path, mounted read-only.")
    downloaded: bool = Field(description="The model unit downloads it; the server runs with HF_HUB_OFFLINE=1.")
    server_environment: dict[str, str] = Field(
        description="Variables the server's container gets for that (HF_HUB_OFFLINE=1), besides `environment`."
    )
    cache_dir: str | None = Field(
        description="The model's directory in the host's cache (hub/models--<owner>--<name>); None for a local model."
    )
    stall_timeout: StallTimeout
    downloader_args: list[str] = Field(
        description="The image's downloader arguments (download-weights ...), run by the model unit and the k8s initContainer."
    )


class Container(_Facts):
    shm_size: str = Field(description="--shm-size.")
    shm_size_bytes: int | None = Field(description="--shm-size in bytes.")
    stop_timeout_sec: int = Field(description="podman's --stop-timeout.")
    environment: dict[str, str] = Field(description="Non-secret environment variables.")
    hardening: list[str] = Field(description="The container's hardening flags.")


class Kubernetes(_Facts):
    container_port: int = Field(description="The unprivileged port TGI listens on in a pod.")
    launcher_args: list[str] = Field(description="The TGI launcher's arguments in a pod (that port).")


class InstanceFacts(_Facts):
    name: str = Field(description="The instance name.")
    unit_name: str = Field(description="huggingface-tgi-<name>.")
    image_unit_name: str = Field(description="huggingface-tgi-<name>-image.")
    service_name: str = Field(description="The main unit's file name.")
    image_service_name: str = Field(description="The image unit's file name.")
    model_service_name: str | None = Field(
        description="The model unit's file name (None: no model unit, for a local model or downloadModel = false)."
    )
    container_name: str = Field(description="The podman container name.")
    rootless: bool = Field(description="podman runs as podman_user.")
    podman_user: PodmanUser | None = Field(description="Who runs podman (None: root).")
    secrets: Secrets
    health: Health
    launcher_args: list[str] = Field(description="The TGI launcher's arguments.")
    podman_args: list[str] = Field(description="podman's arguments (run ... image launcher args).")
    model: Model
    image: Image
    network: Network
    kubernetes: Kubernetes
    start_timeout: StartTimeout
    devices: Devices
    paths: Paths
    container: Container
    tmpfiles_rules: list[str] = Field(description="tmpfiles.d lines of this instance.")
    units: dict[str, Any] = Field(description="NixOS-style definitions of the instance's units (main, image, model).")
    unit_files: dict[str, str] = Field(description="Unit name -> unit file text.")


class CoreResult(_Facts):
    """Everything `core.evaluate` returns (see modules/huggingface-tgi/core/default.nix)."""

    errors: list[Finding]
    warnings: list[Finding]
    notes: list[str] = Field(description="What rendering for the target systemd changed or dropped.")
    newer_systemd_keys: dict[str, int] = Field(
        description="Unit keys the core renders only for a target systemd at least this new (key -> version)."
    )
    instances: dict[str, InstanceFacts]
    units: dict[str, Any]
    kernel_modules: list[str]
    unit_files: dict[str, str]
    tmpfiles_rules: list[str]
    firewall_ports: list[int]
    needs_nvidia: bool
    needs_cdi: bool
    users: dict[str, PodmanUser]
    script_files: dict[str, str]
    setup_users_script: str | None


class Check(_Facts):
    """The validation part only (eval.nix with checkOnly)."""

    errors: list[Finding]
    warnings: list[Finding]
