"""The instance schema: the single source of `services.huggingface-tgi.instances.<name>` options.

Spec keys are exactly the NixOS option names (camelCase). The generated Nix option declarations
(`modules/huggingface-tgi/options.nix`) and `docs/options.md` are rendered from these models by
`tgi-nix options`.

This module holds types, bounds, defaults and docs only. Every rule on the values (model ids,
addresses, paths, combinations of options, what extraArgs may carry) lives once, in the Nix core
(`modules/huggingface-tgi/core/rules.nix` and `guarantees.nix`), which both the NixOS module (as
assertions) and `tgi-nix validate` evaluate.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

DEFAULT_IMAGE = "ghcr.io/huggingface/text-generation-inference:3.3.7"
# uid 0 is root; stay below 2**31 (some tools keep uids in signed ints).
MAX_UID = 2**31 - 2
MAX_GPU_INDEX = 1023

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
UsageStats = Literal["off", "no-stack", "on"]

PositiveInt = Annotated[int, Field(ge=1, le=2**31 - 1)]


def nix(type_: str, default_text: str | None = None) -> dict[str, Any]:
    """Field metadata: the Nix option type (lib.types expression) where it cannot be derived."""
    extra: dict[str, Any] = {"nixType": type_}
    if default_text is not None:
        extra["nixDefaultText"] = default_text
    return extra


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
        description=(
            "Open `port` in the NixOS firewall (only that TCP port). A rootless instance (the default) "
            "on a non-loopback `listenAddress` is reached from other hosts only with this on: pasta holds "
            "its port on the host, behind the input firewall. A rootful instance's port is published "
            "through podman's DNAT, which the input firewall never sees, so it is reachable whatever this "
            "says and `listenAddress` decides exposure (both measured in the VM, "
            "nixos-tests/scenarios/firewall.py)."
        ),
        examples=[True],
    )
    gpus: Literal["all"] | list[Annotated[int, Field(ge=0, le=MAX_GPU_INDEX)]] | None = Field(
        None,
        description=(
            'GPUs passed through CDI: `"all"` (`nvidia.com/gpu=all`) or a list of indices (`nvidia.com/gpu=<i>`). '
            "`null` or an empty list runs on the CPU. Enables `hardware.nvidia-container-toolkit`."
        ),
        examples=[[0, 1]],
        json_schema_extra=nix(
            f'types.nullOr (types.either (types.enum [ "all" ]) (types.listOf (types.ints.between 0 {MAX_GPU_INDEX})))'
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
    allow_gpu_sharing: bool = Field(
        False,
        description=(
            "Let this instance share GPUs with other enabled instances (overlapping `gpus`, or `\"all\"` next to "
            "any other GPU instance). Without it on every instance involved, an overlap is a warning: each TGI "
            "server claims most of a GPU's memory (`--cuda-memory-fraction` 1.0), so the second one usually "
            "fails to load. Set it on both only when the servers are sized to fit together."
        ),
        examples=[True],
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
    usage_stats: UsageStats = Field(
        "off",
        description=(
            "What TGI reports to Hugging Face's usage-statistics endpoint (`--usage-stats`). TGI's own default "
            "is `on`: when it runs in a container it posts the launcher's arguments, the hardware (GPU, CPU, "
            "memory) and, on a crash, the error with its stack trace. `no-stack` sends the same without the "
            "stack trace; `off` (this module's default, as NixOS services keep telemetry off) sends nothing."
        ),
        examples=["no-stack"],
    )
    extra_args: list[str] = Field(
        default_factory=list,
        description=(
            "Extra launcher arguments, appended after all generated ones. Flags the module sets from options "
            "(`--model-id`, `--revision`, `--port`, `--hostname`, `--api-key`, `--num-shard`, `--quantize`, "
            "`--dtype`, the token limits, ...) are refused with the option to use instead."
        ),
        examples=[["--max-best-of", "1"]],
    )
    environment_file: str | None = Field(
        None,
        description=(
            "Root-only file (mode 0600) with `HF_TOKEN=...` and any other secret variables, read by podman "
            "(`--env-file`) at each start. Never copied into the Nix store, the unit or argv; store paths are rejected."
        ),
        examples=["/var/lib/huggingface-tgi/secrets.env"],
        json_schema_extra=nix("types.nullOr pathString"),
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
        json_schema_extra=nix("types.nullOr pathString"),
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
        json_schema_extra=nix("types.nullOr pathString", default_text='"/var/lib/huggingface-tgi/<name>"'),
    )
    start_timeout: str = Field(
        "30min",
        description=(
            "How long the main unit may take to become healthy (`TimeoutStartSec`). With `downloadModel` on "
            "(the default) the model unit has already downloaded the weights, so this bounds loading only; "
            "with it off it also covers TGI's own first download: raise it then for large models on slow links."
        ),
        examples=["2h"],
    )
    download_model: bool = Field(
        True,
        description=(
            "Download a Hub `model` in its own unit, `huggingface-tgi-<name>-model.service` (the image's "
            "`text-generation-server download-weights`, progress in `systemctl status`), and run the server "
            "with `HF_HUB_OFFLINE=1`, so a restart never needs the Hub. `false`: no model unit, TGI downloads "
            "itself at start (within `startTimeout`) and contacts the Hub at every start. Local-path models "
            "never get a model unit."
        ),
        examples=[False],
    )
    download_stall_timeout: str = Field(
        "10min",
        description=(
            "The model unit fails when no bytes arrived in the model's cache directory for this long (a "
            "systemd time span); as long as bytes keep arriving the download may take any time."
        ),
        examples=["30min"],
    )
    extra_podman_args: list[str] = Field(
        default_factory=list,
        description=(
            "Extra `podman run` options, placed before the image. Flags the units manage (`--name`, "
            "`--sdnotify`, `--health-*`, ...) and secrets in `--env` are always refused; flags that undo the "
            "container's hardening or network design (`--privileged`, `--network`, `--cap-add`, "
            "`--security-opt` that disables a confinement, `--device` outside CDI, `--publish`, `--env-file`, "
            "a volume over `/data`, ...) are refused unless `allowUnsafePodmanArgs` is set."
        ),
        examples=[["--memory=64g"]],
    )
    allow_unsafe_podman_args: bool = Field(
        False,
        description=(
            "Escape hatch: let `extraPodmanArgs` carry flags that weaken the container's hardening or bypass "
            "the network design (`--privileged`, `--network=host`, `--cap-add`, ...). Secrets and flags the "
            "units manage stay refused. Only for a deliberate, reviewed exception."
        ),
        examples=[True],
    )

    rootful: bool = Field(
        False,
        description=(
            "Run this instance's podman as **root** instead of rootless. Rootless is the default: podman runs as "
            "an unprivileged system user and the units score about 2.7 in `systemd-analyze security`; rootful "
            "units score about 5.1 (docs/hardening.md). Choose rootful only for what rootless cannot do: a port "
            "below 1024, a host without user namespaces or subordinate ids, or a container whose root must be "
            "the host's root. `user` and `uid` do not apply to a rootful instance."
        ),
        examples=[True],
    )
    user: str | None = Field(
        None,
        description=(
            "The system user that runs this instance's rootless podman. `null`: `huggingface-tgi`, shared by every "
            "rootless instance that sets no user, so instances of the same image keep one copy of it. Set a "
            "name to give an instance its own user: its containers, cache and token copy are then out of reach "
            "of the other instances' user, at the cost of its own copy of the image. The module creates each "
            "user with its own group, a subordinate uid/gid range and lingering (its systemd user manager runs "
            "podman's health checks); storage lives in `/var/lib/huggingface-tgi/.rootless/<user>`. The port "
            "must be >= 1024."
        ),
        examples=["tgi-chat"],
    )
    uid: Annotated[int, Field(ge=1, le=MAX_UID)] | None = Field(
        None,
        description=(
            "The numeric uid (and gid) of the rootless `user`: the units name `user@<uid>.service` and "
            "`/run/user/<uid>`. `null`: derived from the user name, the same on every host (40000 + the first "
            "28 bits of the name's SHA-256, modulo 20000); evaluation fails, naming this option, when two "
            "users get the same uid or one user two uids. Set it when the derived uid is taken on the host."
        ),
        examples=[2001],
    )

    # ---- type messages (value rules are the core's) -------------------------------------------

    @field_validator("gpus", mode="before")
    @classmethod
    def _gpus_type(cls, value: Any) -> Any:
        # One message for the union's type error instead of pydantic's one per branch.
        ok = value is None or value == "all"
        if isinstance(value, list):
            ok = all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i <= MAX_GPU_INDEX for i in value)
        if not ok:
            raise ValueError(
                f'{value!r} is not a GPU selection; write "all", a list of GPU indices such as [0, 1], '
                "or leave gpus out for CPU only"
            )
        return value

    # ---- the core's input ------------------------------------------------------------------

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

    def enabled(self) -> dict[str, Instance]:
        return {name: inst for name, inst in self.instances.items() if inst.enable}


def option_name(field_name: str) -> str:
    """The option (and spec key) name of a model field."""
    return to_camel(field_name)
