"""Guarantees on what is finally rendered, whatever option produced it, with the same verdict from
`tgi-nix validate` (exit 2, `instances.<name>.<option>: ...`) and from the NixOS module evaluated
against real NixOS modules (an assertion `services.huggingface-tgi.instances.<name>.<option>: ...`).

Each case is one instance `x` (a valid base plus the overrides); rejected cases name the option and
a fragment of the message.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from tgi_nix.nix.expr import to_nix

from .nixos_eval import HarnessRun, cli, run_configs

BASE: dict[str, Any] = {"model": "org/model", "port": 8080}
HF_TOKEN = "hf_" + "aB3" * 12


@dataclass(frozen=True)
class Case:
    id: str
    overrides: dict[str, Any]
    option: str | None = None  # None: accepted
    fragment: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def rejected(id: str, option: str, fragment: str, **overrides: Any) -> Case:
    return Case(id, overrides, option, fragment)


def accepted(id: str, **overrides: Any) -> Case:
    return Case(id, overrides)


CASES = [
    # launcher flags the module manages, in every spelling
    rejected("api-key", "extraArgs", "--api-key is set by the module from apiKeyFile", extraArgs=["--api-key", "s3cret-value"]),
    rejected("port", "extraArgs", "--port is set by the module from port", extraArgs=["--port", "9000"]),
    rejected("port-inline", "extraArgs", "--port is set by the module from port", extraArgs=["--port=9000"]),
    rejected("port-short", "extraArgs", "-p is set by the module from port", extraArgs=["-p", "9000"]),
    rejected("model-id", "extraArgs", "--model-id is set by the module from model", extraArgs=["--model-id", "other/model"]),
    rejected("revision", "extraArgs", "from revision", extraArgs=["--revision=dev"]),
    rejected("hostname", "extraArgs", "from listenAddress", extraArgs=["--hostname", "::"]),
    rejected("num-shard", "extraArgs", "from numShard", extraArgs=["--num-shard", "2"]),
    rejected("sharded", "extraArgs", "from numShard", extraArgs=["--sharded", "true"]),
    rejected("quantize", "extraArgs", "from quantize", extraArgs=["--quantize", "awq"]),
    rejected("dtype", "extraArgs", "from dtype", extraArgs=["--dtype", "float16"]),
    rejected("max-total", "extraArgs", "from maxTotalTokens", extraArgs=["--max-total-tokens=10"]),
    rejected("max-input-legacy", "extraArgs", "from maxInputTokens", extraArgs=["--max-input-length", "10"]),
    rejected("trust-remote-code", "extraArgs", "from trustRemoteCode", extraArgs=["--trust-remote-code"]),
    rejected("usage-stats", "extraArgs", "--usage-stats is set by the module from usageStats", extraArgs=["--usage-stats", "on"]),
    rejected("usage-stats-inline", "extraArgs", "from usageStats", extraArgs=["--usage-stats=on"]),
    # podman flags that undo the hardening or the network design
    rejected("privileged", "extraPodmanArgs", "--privileged gives the container", extraPodmanArgs=["--privileged"]),
    rejected("network", "extraPodmanArgs", "--network host replaces", extraPodmanArgs=["--network=host"]),
    rejected("net", "extraPodmanArgs", "--net host replaces", extraPodmanArgs=["--net", "host"]),
    rejected("pid-host", "extraPodmanArgs", "host's PID namespace", extraPodmanArgs=["--pid=host"]),
    rejected("ipc-host", "extraPodmanArgs", "host's IPC namespace", extraPodmanArgs=["--ipc", "host"]),
    rejected("userns", "extraPodmanArgs", "user namespace", extraPodmanArgs=["--userns=keep-id"]),
    rejected("cap-add", "extraPodmanArgs", "gives capabilities", extraPodmanArgs=["--cap-add=SYS_ADMIN"]),
    rejected("seccomp", "extraPodmanArgs", "switches off a confinement", extraPodmanArgs=["--security-opt", "seccomp=unconfined"]),
    rejected("apparmor", "extraPodmanArgs", "switches off a confinement", extraPodmanArgs=["--security-opt=apparmor=unconfined"]),
    rejected("label", "extraPodmanArgs", "switches off a confinement", extraPodmanArgs=["--security-opt=label=disable"]),
    rejected("nnp", "extraPodmanArgs", "switches off a confinement", extraPodmanArgs=["--security-opt=no-new-privileges=false"]),
    rejected("device", "extraPodmanArgs", "outside CDI", extraPodmanArgs=["--device=/dev/kvm"]),
    rejected("publish", "extraPodmanArgs", "publishes a port", extraPodmanArgs=["--publish=0.0.0.0:9000:80"]),
    rejected("publish-short", "extraPodmanArgs", "publishes a port", extraPodmanArgs=["-p", "9000:80"]),
    rejected("publish-bundled", "extraPodmanArgs", "-p 9000:80 publishes a port", extraPodmanArgs=["-itp9000:80"]),
    rejected("publish-all", "extraPodmanArgs", "publishes every exposed port", extraPodmanArgs=["-P"]),
    rejected("env-file", "extraPodmanArgs", "use environmentFile", extraPodmanArgs=["--env-file=/etc/tgi.env"]),
    rejected("env-host", "extraPodmanArgs", "copies the host's environment", extraPodmanArgs=["--env-host"]),
    rejected("volume-data", "extraPodmanArgs", "mounts over /data", extraPodmanArgs=["--volume=/srv/x:/data"]),
    rejected("volume-short", "extraPodmanArgs", "mounts over /data", extraPodmanArgs=["-v", "/srv/x:/data:rw"]),
    rejected("mount-data", "extraPodmanArgs", "mounts over /data", extraPodmanArgs=["--mount=type=bind,src=/srv/x,dst=/data"]),
    rejected("pids-limit", "extraPodmanArgs", "process limit", extraPodmanArgs=["--pids-limit=-1"]),
    # podman flags the units manage: refused even with the escape hatch
    rejected("name", "extraPodmanArgs", "--name is managed by the module", extraPodmanArgs=["--name=other"], allowUnsafePodmanArgs=True),
    rejected("detach", "extraPodmanArgs", "-d is managed by the module", extraPodmanArgs=["-d"], allowUnsafePodmanArgs=True),
    rejected("health", "extraPodmanArgs", "--health-cmd is managed", extraPodmanArgs=["--health-cmd=true"]),
    rejected("sdnotify", "extraPodmanArgs", "--sdnotify is managed", extraPodmanArgs=["--sdnotify=conmon"]),
    # secrets: never in argv or a unit, whichever option carries them, escape hatch or not
    rejected("env-secret-podman", "extraPodmanArgs", "HF_TOKEN looks like a secret", extraPodmanArgs=[f"--env=HF_TOKEN={HF_TOKEN}"], allowUnsafePodmanArgs=True),
    rejected("env-secret-short", "extraPodmanArgs", "API_KEY looks like a secret", extraPodmanArgs=["-e", "API_KEY=abc"]),
    rejected("environment-secret", "environment", "HF_TOKEN looks like a secret", environment={"HF_TOKEN": "x"}),
    rejected("environment-hub-token", "environment", "HUGGING_FACE_HUB_TOKEN looks like a secret", environment={"HUGGING_FACE_HUB_TOKEN": "x"}),
    rejected("environment-managed", "environment", "MODEL_ID would set the launcher's model", environment={"MODEL_ID": "other/model"}),
    rejected("environment-usage-stats", "environment", "USAGE_STATS would set the launcher's usageStats", environment={"USAGE_STATS": "on"}),
    rejected("token-shape-args", "extraArgs", "shaped like a secret", extraArgs=["--cors-allow-origin", HF_TOKEN]),
    rejected("token-shape-env", "environment", "shaped like a secret", environment={"OPENAI_BASE": "sk-" + "x1" * 12}),
    # offline serving: the model unit's HF_HUB_OFFLINE=1 is managed while downloadModel is on
    rejected("hub-offline-environment", "environment", "HF_HUB_OFFLINE is set by the module: with downloadModel", environment={"HF_HUB_OFFLINE": "0"}),
    rejected("hub-offline-podman", "extraPodmanArgs", "HF_HUB_OFFLINE is set by the module", extraPodmanArgs=["--env=HF_HUB_OFFLINE=0"]),
    rejected("stall-infinite", "downloadStallTimeout", "not a finite systemd time span", downloadStallTimeout="infinity"),
    rejected("stall-word", "downloadStallTimeout", "not a finite systemd time span", downloadStallTimeout="soon"),
    # value rules (the hand-written NixOS configuration used to accept these)
    rejected("model-dashes", "model", "is not a Hugging Face model id", model="acme--x/model"),
    rejected("model-dots", "model", "is not a Hugging Face model id", model="acme/a..b"),
    rejected("listen-hostname", "listenAddress", "is not an IP address", listenAddress="localhost"),
    rejected("shm", "shmSize", "is not a size", shmSize="lots"),
    rejected("shards-without-gpus", "numShard", "needs GPUs", numShard=2),
    rejected("gpus-twice", "gpus", "lists an index twice", gpus=[0, 0]),
    rejected("timeout-huge", "startTimeout", "is not a systemd time span", startTimeout="99999999999999h"),
    rejected("env-file-in-store", "environmentFile", "is in the Nix store", environmentFile="/nix/store/abc-secrets.env"),
    # one step beside: accepted
    accepted("base"),
    accepted("unsafe-allowed", extraPodmanArgs=["--privileged", "--network=host"], allowUnsafePodmanArgs=True),
    accepted("memory", extraPodmanArgs=["--memory=64g", "--volume=/srv/extra:/extra:ro"]),
    accepted("cdi-device", extraPodmanArgs=["--device=amd.com/gpu=all"]),
    accepted("launcher-extra", extraArgs=["--max-best-of", "1", "--cors-allow-origin", "https://example.org"]),
    accepted("environment-plain", environment={"HF_HUB_ENABLE_HF_TRANSFER": "0"}),
    accepted("ipv6-wildcard", listenAddress="::"),
    accepted("hub-offline-own-download", environment={"HF_HUB_OFFLINE": "1"}, downloadModel=False),
    accepted("hub-offline-local-model", environment={"HF_HUB_OFFLINE": "1"}, model="/srv/models/m"),
    accepted("usage-stats-on", usageStats="on"),
]


def instance(case: Case) -> dict[str, Any]:
    return {**BASE, **case.overrides}


def module_text(case: Case) -> str:
    return "{ ... }:\n{\n  services.huggingface-tgi.instances.x = " + to_nix(instance(case), 1) + ";\n}\n"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_validate_verdict(case: Case, tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(tomli_w.dumps({"instances": {"x": instance(case)}}))
    proc = subprocess.run([cli(), "validate", str(spec)], capture_output=True, text=True, check=False)
    if case.option is None:
        assert proc.returncode == 0, proc.stderr
        return
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith(f"instances.x.{case.option}: ")]
    assert any(case.fragment in line for line in lines), proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def module_run(tmp_path_factory: pytest.TempPathFactory) -> HarnessRun:
    return run_configs({f"g-{c.id}": module_text(c) for c in CASES}, tmp_path_factory.mktemp("nixos-eval"))


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_module_verdict(case: Case, module_run: HarnessRun) -> None:
    result = module_run.results[f"g-{case.id}"]
    assert result.error is None, result.error
    if case.option is None:
        assert result.assertions == []
        return
    prefix = f"services.huggingface-tgi.instances.x.{case.option}: "
    assert any(a.startswith(prefix) and case.fragment in a for a in result.assertions), result.assertions
