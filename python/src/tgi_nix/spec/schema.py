"""The instance schema: the single source of `services.huggingface-tgi.instances.<name>` options.

Spec keys are exactly the NixOS option names (camelCase). The generated Nix option declarations
(`modules/huggingface-tgi/options.nix`) and `docs/options.md` are rendered from these models by
`tgi-nix options`; the Nix module mirrors the cross-field rules as assertions.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

DEFAULT_IMAGE = "ghcr.io/huggingface/text-generation-inference:3.3.7"
UNIT_PREFIX = "huggingface-tgi-"

# Instance names become `huggingface-tgi-<name>.service`, the container name and (render-k8s)
# Kubernetes object names, so they follow the strictest of those: an RFC 1035 label.
INSTANCE_NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")
# A system user name that useradd (shadow) and NixOS accept: 1-32 characters.
USER_NAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
# uid 0 is root; stay below 2**31 (some tools keep uids in signed ints).
MAX_UID = 2**31 - 2
# Hugging Face repo ids: owner/name, letters, digits, '-', '_', '.'; no '--' or '..'.
MODEL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
REVISION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
# Container image references: [registry[:port]/]path[:tag][@sha256:<64 hex>] (distribution grammar).
_IMAGE_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)"
IMAGE_RE = re.compile(
    rf"^(?P<name>{_IMAGE_DOMAIN}?{_IMAGE_COMPONENT}(?:/{_IMAGE_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
SIZE_RE = re.compile(r"^[1-9][0-9]*[bkmgBKMG]?$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Variables that carry secrets must come from `environmentFile`, never from `environment`
# (which ends up in the unit and the Nix store).
SECRET_ENV_RE = re.compile(r"(^|_)(TOKEN|SECRET|PASSWORD|API_KEY)$", re.IGNORECASE)
# systemd time spans such as "1h", "30min", "90s", "1h 30min", or "infinity".
TIMESPAN_RE = re.compile(r"^(infinity|([0-9]+ ?(us|ms|s|sec|m|min|h|hr|d)? ?)+)$")
CDI_DEVICE_RE = re.compile(r"^[a-z0-9.-]+\.[a-z]+/[a-zA-Z0-9_.-]+=[a-zA-Z0-9_.:-]+$")
STORE_DIR = "/nix/store"

Quantize = Literal[
    "awq",
    "compressed-tensors",
    "eetq",
    "exl2",
    "gptq",
    "marlin",
    "bitsandbytes",
    "bitsandbytes-nf4",
    "bitsandbytes-fp4",
    "fp8",
]
Dtype = Literal["float16", "bfloat16"]
PullPolicy = Literal["missing", "always", "newer", "never"]

PositiveInt = Annotated[int, Field(ge=1, le=2**31 - 1)]


def nix(type_: str, default_text: str | None = None) -> dict[str, Any]:
    """Field metadata: the Nix option type (lib.types expression) where it cannot be derived."""
    extra: dict[str, Any] = {"nixType": type_}
    if default_text is not None:
        extra["nixDefaultText"] = default_text
    return extra


def _absolute_path(value: str, what: str, *, allow_store: bool) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{what} must be an absolute path, got {value!r}; write it as /path/to/...")
    if "\n" in value or "\x00" in value:
        raise ValueError(f"{what} must not contain newlines or NUL bytes")
    if not allow_store and (value == STORE_DIR or value.startswith(STORE_DIR + "/")):
        raise ValueError(
            f"{what} {value!r} is in the Nix store, which is world-readable and immutable; "
            "keep it outside /nix/store (e.g. under /var/lib or /run/secrets)"
        )
    return value


class Instance(BaseModel):
    """One TGI server: a podman container run by `huggingface-tgi-<name>.service`."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        # TOML has real types: "8080" for a port is a mistake to report, not to coerce.
        strict=True,
    )

    enable: bool = Field(
        True,
        description="Whether to run this instance. Disabled instances are kept in the config but get no unit.",
        examples=[False],
    )
    model: str = Field(
        description=(
            "Hugging Face model id (`owner/name`) passed to the launcher as `--model-id`, or an absolute "
            "path to local weights, which is mounted read-only into the container at the same path."
        ),
        examples=["deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"],
    )
    revision: str | None = Field(
        None,
        description="Branch, tag or commit of the model (`--revision`). `null` uses the repository's default branch.",
        examples=["main"],
    )
    image: str = Field(
        DEFAULT_IMAGE,
        description=(
            "Container image reference. Pin a tag or an `@sha256:` digest; `latest` (or no tag) is accepted "
            "but changes under you and is warned about."
        ),
        examples=["ghcr.io/huggingface/text-generation-inference:3.3.7"],
    )
    image_file: str | None = Field(
        None,
        description=(
            "Path to an image archive loaded with `podman load` before start instead of pulling "
            "(air-gapped hosts, VM tests). The archive must contain `image`."
        ),
        examples=["/var/lib/images/tgi-3.3.7.tar"],
        json_schema_extra=nix("types.nullOr types.path"),
    )
    pull: PullPolicy = Field(
        "missing",
        description=(
            "When the image unit pulls `image` (ignored with `imageFile`): `missing` pulls only if absent, "
            "`always`/`newer` on every start of the image unit, `never` requires it to be present."
        ),
        examples=["always"],
    )
    port: int = Field(
        ge=1,
        le=65535,
        description="Host port on which the instance's HTTP API is published (TGI listens on 80 in the container).",
        examples=[8080],
        json_schema_extra=nix("types.port"),
    )
    listen_address: str = Field(
        "127.0.0.1",
        description=(
            "Host address the port is published on. The default keeps the API on loopback; any other "
            "address exposes it to the network, so set it deliberately (and see `openFirewall`)."
        ),
        examples=["0.0.0.0"],
    )
    open_firewall: bool = Field(
        False,
        description="Open `port` in the NixOS firewall (only that TCP port).",
        examples=[True],
    )
    gpus: Literal["all"] | list[Annotated[int, Field(ge=0, le=1023)]] | None = Field(
        None,
        description=(
            'GPUs passed through CDI: `"all"` (`nvidia.com/gpu=all`) or a list of indices (`nvidia.com/gpu=<i>`). '
            "`null` or an empty list runs on the CPU. Enables `hardware.nvidia-container-toolkit`."
        ),
        examples=[[0, 1]],
        json_schema_extra=nix(
            'types.nullOr (types.either (types.enum [ "all" ]) (types.listOf types.ints.unsigned))'
        ),
    )
    cdi_devices: list[str] = Field(
        default_factory=list,
        description=(
            "Additional CDI devices (`vendor.com/class=name`) passed with `--device`, for accelerators other "
            "than NVIDIA GPUs. The CDI spec must exist in `/etc/cdi` or `/run/cdi`."
        ),
        examples=[["amd.com/gpu=all"]],
    )
    num_shard: PositiveInt | None = Field(
        None,
        description="Number of shards (`--num-shard`), at most the number of listed GPUs. `null` lets TGI decide.",
        examples=[2],
    )
    shm_size: str = Field(
        "1g",
        description="Size of the container's `/dev/shm` (`--shm-size`); NCCL between shards needs it.",
        examples=["2g"],
    )
    quantize: Quantize | None = Field(
        None,
        description="Quantization method (`--quantize`). Cannot be combined with `dtype`.",
        examples=["awq"],
    )
    dtype: Dtype | None = Field(
        None,
        description="Force the weights' dtype (`--dtype`). Cannot be combined with `quantize`.",
        examples=["bfloat16"],
    )
    max_concurrent_requests: PositiveInt | None = Field(
        None,
        description="Requests in flight before TGI answers 429 (`--max-concurrent-requests`, TGI default 128).",
        examples=[128],
    )
    max_input_tokens: PositiveInt | None = Field(
        None, description="Maximum prompt length in tokens (`--max-input-tokens`).", examples=[4096]
    )
    max_total_tokens: PositiveInt | None = Field(
        None,
        description="Maximum prompt + generated tokens per request (`--max-total-tokens`); must exceed `maxInputTokens`.",
        examples=[8192],
    )
    max_batch_prefill_tokens: PositiveInt | None = Field(
        None, description="Token budget of one prefill batch (`--max-batch-prefill-tokens`).", examples=[8192]
    )
    max_batch_total_tokens: PositiveInt | None = Field(
        None, description="Token budget of a running batch (`--max-batch-total-tokens`).", examples=[65536]
    )
    max_waiting_tokens: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = Field(
        None,
        description="Decode steps before waiting requests are forced into the batch (`--max-waiting-tokens`).",
        examples=[20],
    )
    trust_remote_code: bool = Field(
        False,
        description="Allow the model repository's own Python code to run (`--trust-remote-code`). Only for trusted models.",
        examples=[True],
    )
    extra_args: list[str] = Field(
        default_factory=list,
        description="Extra launcher arguments, appended after all generated ones.",
        examples=[["--max-best-of", "1"]],
    )
    environment_file: str | None = Field(
        None,
        description=(
            "Root-only file (mode 0600) with `HF_TOKEN=...` and any other secret variables, read by podman "
            "(`--env-file`) at each start. Never copied into the Nix store, the unit or argv; store paths are rejected."
        ),
        examples=["/var/lib/huggingface-tgi/secrets.env"],
        json_schema_extra=nix("types.nullOr secretPath"),
    )
    api_key_file: str | None = Field(
        None,
        description=(
            "Root-only file whose first line is the key clients must send as `Authorization: Bearer <key>` "
            "(TGI's `--api-key`). At each start root writes it as `API_KEY=...` (TGI reads that variable) to a "
            "mode-0400 file in the unit's runtime directory, which podman reads with `--env-file`; the key is "
            "never in the Nix store, the unit, argv or `systemctl show`. Store paths are rejected."
        ),
        examples=["/var/lib/huggingface-tgi/api-key"],
        json_schema_extra=nix("types.nullOr secretPath"),
    )
    environment: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Non-secret environment variables for the container. They end up in the unit file and the Nix "
            "store: put tokens in `environmentFile`."
        ),
        examples=[{"HF_HUB_ENABLE_HF_TRANSFER": "0"}],
    )
    cache_dir: str | None = Field(
        None,
        description=(
            "Host directory mounted at `/data` (the image's `HF_HOME`: downloaded weights survive restarts). "
            "Created by systemd-tmpfiles. `null` means `/var/lib/huggingface-tgi/<name>`."
        ),
        examples=["/srv/models/tgi"],
        json_schema_extra=nix("types.nullOr hostPath", default_text='"/var/lib/huggingface-tgi/<name>"'),
    )
    start_timeout: str = Field(
        "1h",
        description=(
            "How long the unit may take to become healthy (`TimeoutStartSec`): covers the first model "
            "download and loading. Raise it for very large models on slow links."
        ),
        examples=["3h"],
    )
    extra_podman_args: list[str] = Field(
        default_factory=list,
        description="Extra `podman run` options, placed before the image. They can weaken the container's hardening.",
        examples=[["--memory=64g"]],
    )

    user: str | None = Field(
        None,
        description=(
            "Run this instance's podman **rootless** as this system user, which the module creates with its own "
            "group, a subordinate uid/gid range and lingering (its systemd user manager runs podman's health "
            "checks). Container storage then lives in `/var/lib/huggingface-tgi/.rootless/<user>`; the "
            "root-only environment file reaches podman as a user-only copy in the unit's runtime directory. "
            "One user per rootless instance; the port must be >= 1024. `null`: rootful podman (the default). "
            "Requires `uid`. See docs/hardening.md for both exposure scores."
        ),
        examples=["tgi-chat"],
    )
    uid: Annotated[int, Field(ge=1, le=MAX_UID)] | None = Field(
        None,
        description=(
            "The fixed numeric uid (and gid) of `user`: the unit names `user@<uid>.service` and "
            "`/run/user/<uid>`. Required with `user`; unique per rootless instance."
        ),
        examples=[2001],
    )

    # ---- field rules -------------------------------------------------------------------------

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str) -> str:
        if value.startswith("/"):
            return _absolute_path(value, "local model path", allow_store=True)
        if not MODEL_ID_RE.match(value) or "--" in value or ".." in value:
            raise ValueError(
                f"{value!r} is not a Hugging Face model id; write it as owner/name "
                "(e.g. deepseek-ai/DeepSeek-R1-Distill-Qwen-7B) or give an absolute path to local weights"
            )
        return value

    @field_validator("revision")
    @classmethod
    def _check_revision(cls, value: str | None) -> str | None:
        if value is not None and not REVISION_RE.match(value):
            raise ValueError(f"{value!r} is not a branch, tag or commit name (letters, digits, '._/-')")
        return value

    @field_validator("image")
    @classmethod
    def _check_image(cls, value: str) -> str:
        if not IMAGE_RE.match(value):
            raise ValueError(
                f"{value!r} is not a container image reference; write registry/path:tag or "
                f"registry/path@sha256:<64 hex>, e.g. {DEFAULT_IMAGE}"
            )
        return value

    @field_validator("image_file")
    @classmethod
    def _check_image_file(cls, value: str | None) -> str | None:
        return None if value is None else _absolute_path(value, "imageFile", allow_store=True)

    @field_validator("gpus", mode="before")
    @classmethod
    def _check_gpus(cls, value: Any) -> Any:
        ok = value is None or value == "all"
        if isinstance(value, list):
            ok = all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i <= 1023 for i in value)
        if not ok:
            raise ValueError(
                f'{value!r} is not a GPU selection; write "all", a list of GPU indices such as [0, 1], '
                "or leave gpus out for CPU only"
            )
        return value

    @field_validator("listen_address")
    @classmethod
    def _check_listen_address(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not an IP address; use 127.0.0.1 (loopback), ::1, 0.0.0.0 or a host address"
            ) from None
        return value

    @field_validator("cdi_devices")
    @classmethod
    def _check_cdi(cls, value: list[str]) -> list[str]:
        for device in value:
            if not CDI_DEVICE_RE.match(device):
                raise ValueError(f"{device!r} is not a CDI device name; write vendor.com/class=name")
        return value

    @field_validator("shm_size")
    @classmethod
    def _check_shm(cls, value: str) -> str:
        if not SIZE_RE.match(value):
            raise ValueError(
                f"{value!r} is not a size; write a number with an optional unit b, k, m or g (e.g. 1g)"
            )
        return value

    @field_validator("start_timeout")
    @classmethod
    def _check_timeout(cls, value: str) -> str:
        if not TIMESPAN_RE.match(value.strip()) or not value.strip():
            raise ValueError(f"{value!r} is not a systemd time span; write e.g. 90s, 30min, 2h or infinity")
        return value.strip()

    @field_validator("environment_file")
    @classmethod
    def _check_environment_file(cls, value: str | None) -> str | None:
        return None if value is None else _absolute_path(value, "environmentFile", allow_store=False)

    @field_validator("api_key_file")
    @classmethod
    def _check_api_key_file(cls, value: str | None) -> str | None:
        return None if value is None else _absolute_path(value, "apiKeyFile", allow_store=False)

    @field_validator("cache_dir")
    @classmethod
    def _check_cache_dir(cls, value: str | None) -> str | None:
        return None if value is None else _absolute_path(value, "cacheDir", allow_store=False)

    @field_validator("user")
    @classmethod
    def _check_user(cls, value: str | None) -> str | None:
        if value is not None and (not USER_NAME_RE.match(value) or value == "root"):
            raise ValueError(
                f"user {value!r} is not a usable system user name: use 1-32 lowercase letters, digits, '_' "
                "and '-', starting with a letter or '_', and not root (null means rootful podman)"
            )
        return value

    @field_validator("environment")
    @classmethod
    def _check_environment(cls, value: dict[str, str]) -> dict[str, str]:
        for name, content in value.items():
            if not ENV_NAME_RE.match(name):
                raise ValueError(
                    f"{name!r} is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)"
                )
            if SECRET_ENV_RE.search(name) or name.upper() == "HUGGING_FACE_HUB_TOKEN":
                raise ValueError(
                    f"{name} looks like a secret; put it in environmentFile (a root-only file), "
                    "not in environment, which is stored in the unit and the Nix store"
                )
            if "\n" in content or "\x00" in content:
                raise ValueError(f"the value of {name} must not contain newlines or NUL bytes")
        return value

    @field_validator("extra_args", "extra_podman_args")
    @classmethod
    def _check_args(cls, value: list[str]) -> list[str]:
        for arg in value:
            if "\n" in arg or "\x00" in arg:
                raise ValueError(f"argument {arg!r} must not contain newlines or NUL bytes")
        return value

    # ---- cross-field rules (mirrored as assertions in the NixOS module) -----------------------

    @model_validator(mode="after")
    def _check_combinations(self) -> Instance:
        if self.dtype is not None and self.quantize is not None:
            raise ValueError(
                "dtype and quantize cannot be combined (TGI refuses it); remove dtype or quantize"
            )
        if (
            self.max_input_tokens is not None
            and self.max_total_tokens is not None
            and self.max_total_tokens <= self.max_input_tokens
        ):
            raise ValueError(
                f"maxTotalTokens ({self.max_total_tokens}) must be greater than maxInputTokens "
                f"({self.max_input_tokens}); raise maxTotalTokens or lower maxInputTokens"
            )
        if self.num_shard is not None and isinstance(self.gpus, list) and self.num_shard > len(self.gpus):
            raise ValueError(
                f"numShard ({self.num_shard}) is larger than the {len(self.gpus)} GPU(s) listed in gpus; "
                "list more GPUs or lower numShard"
            )
        if self.num_shard is not None and self.num_shard > 1 and not self.gpus:
            raise ValueError(f"numShard ({self.num_shard}) needs GPUs; set gpus or remove numShard")
        if (self.user is None) != (self.uid is None):
            raise ValueError(
                "user and uid go together (rootless podman needs the user's fixed uid); set both or neither"
            )
        if self.user is not None and self.port < 1024:
            raise ValueError(
                f"port {self.port} is privileged, but a rootless instance (user {self.user!r}) publishes its "
                "port as that user; use a port of 1024 or more, or run rootful (remove user and uid)"
            )
        if isinstance(self.gpus, list) and len(set(self.gpus)) != len(self.gpus):
            raise ValueError(f"gpus lists an index twice ({self.gpus}); list each GPU once")
        return self

    # ---- derived facts (no unit logic here: that lives in the Nix core) -------------------------

    def warnings(self) -> list[str]:
        """Accepted but questionable settings."""
        found: list[str] = []
        match = IMAGE_RE.match(self.image)
        if match and not match.group("digest") and match.group("tag") in (None, "latest"):
            found.append(
                f"image {self.image!r} is not pinned (latest or no tag); pin a release tag or an @sha256: digest"
            )
        if self.open_firewall and ipaddress.ip_address(self.listen_address).is_loopback:
            found.append(
                "openFirewall is set but listenAddress is loopback, so the opened port serves nothing"
            )
        if self.trust_remote_code:
            found.append("trustRemoteCode runs the model repository's code inside the container")
        return found

    def to_core(self) -> dict[str, Any]:
        """All options with defaults filled in, under their option names: the Nix core's input."""
        return self.model_dump(mode="json", by_alias=True)


class Spec(BaseModel):
    """A spec file: `[instances.<name>]` tables."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    instances: dict[str, Instance] = Field(
        default_factory=dict,
        description="The TGI instances, by name. The name becomes `huggingface-tgi-<name>.service`.",
    )

    @field_validator("instances", mode="before")
    @classmethod
    def _check_names(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for name in value:
                if not isinstance(name, str) or not INSTANCE_NAME_RE.match(name):
                    raise ValueError(
                        f"instance name {name!r} is not allowed: use 1-40 lowercase letters, digits and '-', "
                        "starting with a letter and not ending with '-' (it becomes the unit and container "
                        f"name {UNIT_PREFIX}<name>)"
                    )
        return value

    @model_validator(mode="after")
    def _check_ports(self) -> Spec:
        seen: dict[int, str] = {}
        for name, inst in self.instances.items():
            if not inst.enable:
                continue
            if inst.port in seen:
                raise ValueError(
                    f"instances {seen[inst.port]!r} and {name!r} both use port {inst.port}; "
                    "give each instance its own port"
                )
            seen[inst.port] = name
        # One user per rootless instance: all podman processes of a user share one user and mount
        # namespace (podman's pause process), so instances of one user would share storage locks,
        # writable paths and failure domain.
        by_user: dict[str, str] = {}
        by_uid: dict[int, str] = {}
        for name, inst in self.enabled().items():
            if inst.user is None or inst.uid is None:
                continue
            if inst.user in by_user:
                raise ValueError(
                    f"instances {by_user[inst.user]!r} and {name!r} both run rootless as user {inst.user!r}; "
                    "give each rootless instance its own user (and uid)"
                )
            if inst.uid in by_uid:
                raise ValueError(
                    f"instances {by_uid[inst.uid]!r} and {name!r} both use uid {inst.uid}; "
                    "give each rootless instance's user its own uid"
                )
            by_user[inst.user] = name
            by_uid[inst.uid] = name
        return self

    def enabled(self) -> dict[str, Instance]:
        return {name: inst for name, inst in self.instances.items() if inst.enable}


def option_name(field_name: str) -> str:
    """The option (and spec key) name of a model field."""
    return to_camel(field_name)
