"""The Nix core, evaluated by real nix-instantiate, on generated specs: invariants of its output."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tgi_nix.errors import NixError, SpecError, ToolMissingError
from tgi_nix.nix.bridge import (
    DEFAULT_PODMAN,
    DEFAULT_SCRIPTS_DIR,
    check,
    checkout_root,
    evaluate,
    module_dir,
    nix_instantiate,
    parse_nix_file,
)
from tgi_nix.spec.loader import parse_spec

from .strategies import specs

TOKEN = "hf_SENTINELtokenThatMustNeverLeak0123456789"
SCRIPTS = DEFAULT_SCRIPTS_DIR
MODULE = module_dir()


def split_exec(line: str) -> list[str]:
    """Undo the core's ExecStart quoting (bare words or JSON strings; %% and $$ doubled)."""
    words: list[str] = []
    # systemd splits on ASCII whitespace only (not NEL, U+2028, ...), like this pattern.
    for match in re.finditer(r'"((?:[^"\\]|\\.)*)"|([^ \t"]+)', line):
        raw = json.loads(f'"{match.group(1)}"') if match.group(1) is not None else match.group(2)
        words.append(raw.replace("%%", "%").replace("$$", "$"))
    return words


def unit_lines(text: str, key: str) -> list[str]:
    # systemd reads unit files line by line on "\n" only; str.splitlines() would also split on NEL.
    return [line.split("=", 1)[1] for line in text.split("\n") if line.startswith(key + "=")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_core_invariants(data: dict[str, Any]) -> None:
    spec = parse_spec(data)
    result = evaluate(spec, podman="/usr/bin/podman")
    enabled = spec.enabled()
    assert sorted(result.instances) == sorted(enabled)
    expected_units = {f"huggingface-tgi-{n}{s}.service" for n in enabled for s in ("", "-image")}
    # A model unit exactly for the Hub models with downloadModel; their servers run offline.
    expected_units |= {
        f"huggingface-tgi-{n}-model.service"
        for n, inst in enabled.items()
        if inst.download_model and not inst.model.startswith("/")
    }
    assert set(result.unit_files) == expected_units
    for name, inst in enabled.items():
        downloaded = inst.download_model and not inst.model.startswith("/")
        assert result.instances[name].model.downloaded == downloaded
        assert ("--env=HF_HUB_OFFLINE=1" in result.instances[name].podman_args) == downloaded

    for name, inst in enabled.items():
        facts = result.instances[name]
        unit = f"huggingface-tgi-{name}"
        # Rootless unless rootful; without a user of its own, the shared one.
        user_name = None if inst.rootful else (inst.user or "huggingface-tgi")
        assert facts.rootless == (user_name is not None)
        assert facts.unit_name == unit and facts.container_name == unit
        argv = facts.podman_args
        assert f"--name={unit}" in argv

        # Exactly one published port, on the configured address, to TGI's port 80.
        publishes = [a for a in argv if a.startswith("--publish=")]
        host = f"[{inst.listen_address}]" if ":" in inst.listen_address else inst.listen_address
        assert publishes == [f"--publish={host}:{inst.port}:80"]

        # CDI devices iff GPUs (or explicit CDI devices) are requested.
        devices = [a.removeprefix("--device=") for a in argv if a.startswith("--device=")]
        if inst.gpus == "all":
            assert "nvidia.com/gpu=all" in devices
        elif inst.gpus:
            assert [d for d in devices if d.startswith("nvidia.com/")] == [
                f"nvidia.com/gpu={i}" for i in inst.gpus
            ]
        else:
            assert not [d for d in devices if d.startswith("nvidia.com/")]
        assert devices == facts.devices.cdi_devices
        assert set(inst.cdi_devices) <= set(devices)
        assert facts.devices.nvidia == bool(inst.gpus)

        # Secrets only by reference: the env file path, never a value, never in `environment`.
        # Rootless podman cannot read the root-only file: root copies it, user-only, into the
        # unit's runtime directory before the start.
        env_files = [a for a in argv if a.startswith("--env-file=")]
        text = result.unit_files[f"{unit}.service"]
        copy = f"/run/{unit}/environment"
        if not inst.environment_file:
            assert env_files == []
        elif user_name:
            assert env_files == [f"--env-file={copy}"]
            pre = split_exec(unit_lines(text, "ExecStartPre")[-1].removeprefix("+"))
            assert pre == [f"{SCRIPTS}/copy-env-file.sh", inst.environment_file, copy, user_name]
        else:
            assert env_files == [f"--env-file={inst.environment_file}"]
        assert not any("HF_TOKEN" in a or TOKEN in a for a in argv)

        # Launcher args follow the image; the model id is passed; extraArgs come last.
        image_at = argv.index(inst.image)
        launcher = argv[image_at + 1 :]
        assert launcher == facts.launcher_args
        assert launcher[:2] == ["--model-id", inst.model]
        if inst.extra_args:
            assert launcher[-len(inst.extra_args) :] == inst.extra_args
        if inst.quantize:
            assert launcher[launcher.index("--quantize") + 1] == inst.quantize

        cache = inst.cache_dir or f"/var/lib/huggingface-tgi/{name}"
        assert facts.paths.cache_dir == cache
        assert f"--volume={cache}:/data:rw" in argv
        owner = f"{user_name} {user_name}" if user_name else "root root"
        assert f"d {cache} 0750 {owner} - -" in result.tmpfiles_rules

        # The unit file's ExecStart is exactly podman + argv after systemd unquoting.
        (exec_start,) = unit_lines(text, "ExecStart")
        assert split_exec(exec_start) == ["/usr/bin/podman", *argv]
        # Readiness: podman reports the running container, the unit turns active only when the
        # host's poll of /health on the published address (ExecStartPost=) sees 200.
        assert "Type=notify" in text and "--sdnotify=conmon" in argv
        host = facts.network.reachable_host
        assert unit_lines(text, "ExecStartPost") == [
            f"/usr/local/libexec/tgi-nix/wait-ready.sh {host} {inst.port} {unit} /usr/bin/podman {unit}"
        ]
        # No IP filter: it would see the poll's packets after netavark's DNAT (hardening.nix).
        assert not unit_lines(text, "IPAddressDeny") and not unit_lines(text, "IPAddressAllow")
        assert TOKEN not in text

        # Rootless: both units run as the user, need its manager and write only its own paths.
        image_text = result.unit_files[f"{unit}-image.service"]
        # The model unit (when there is one) runs as the same user, with the same token file.
        model_text = result.unit_files.get(f"{unit}-model.service")
        model_units = [f"{unit}-model.service"] if model_text is not None else []
        own_texts = [text, image_text, *([model_text] if model_text is not None else [])]
        if model_text is not None:
            assert TOKEN not in model_text
            (model_exec,) = unit_lines(model_text, "ExecStart")
            assert "--cap-drop=all" in model_exec and "--security-opt=no-new-privileges" in model_exec
            # podman must leave the unit's NOTIFY_SOCKET to the script (no READY/MAINPID of its own)
            assert "--sdnotify=ignore" in split_exec(model_exec)
            if inst.environment_file:
                expected_file = (
                    f"/run/{unit}-model/environment" if user_name else inst.environment_file
                )
                assert f"--env-file={expected_file}" in split_exec(model_exec)
        if user_name:
            home = f"/var/lib/huggingface-tgi/.rootless/{user_name}"
            user = result.users[user_name]
            assert user.home == home and facts.podman_user == user
            # the uid set, or one derived from the name in [40000, 60000)
            assert user.uid == inst.uid if inst.uid is not None else 40000 <= user.uid < 60000
            assert f"d {home} 0700 {owner} - -" in result.tmpfiles_rules
            assert unit_lines(text, "Requires") == [
                " ".join([f"{unit}-image.service", *model_units, f"user@{user.uid}.service"])
            ]
            for t in own_texts:
                assert unit_lines(t, "User") == [user_name] and unit_lines(t, "Group") == [user_name]
                assert unit_lines(t, "ReadWritePaths") == [home, "/var/tmp", cache]
                # No host capabilities; the user namespace is made outside the sandbox ("+").
                assert unit_lines(t, "CapabilityBoundingSet") == [""]
                assert unit_lines(t, "NoNewPrivileges") == ["true"]
                assert unit_lines(t, "ExecStartPre")[0] == (
                    f"+/usr/bin/setpriv --reuid={user.uid} --regid={user.uid} --init-groups "
                    "/usr/bin/podman unshare true"
                )
                assert f'Environment="XDG_RUNTIME_DIR=/run/user/{user.uid}"' in t
        else:
            assert unit_lines(text, "Requires") == [" ".join([f"{unit}-image.service", *model_units])]
            assert all("User=" not in t for t in own_texts)
    rootless_users = {i.user or "huggingface-tgi" for i in enabled.values() if not i.rootful}
    assert set(result.users) == rootless_users
    # render-units' setup script names each user once, with its uid and home (none: no script)
    if rootless_users:
        assert result.setup_users_script is not None
        last = result.setup_users_script.rstrip("\n").splitlines()[-1].split()
        assert last[0] == "setup_users" and len(last) == 1 + 3 * len(rootless_users)
        assert {tuple(last[i : i + 3]) for i in range(1, len(last), 3)} == {
            (u.name, str(u.uid), u.home) for u in result.users.values()
        }
    else:
        assert result.setup_users_script is None

    assert sorted(result.firewall_ports) == sorted(i.port for i in enabled.values() if i.open_firewall)


def test_disabled_instances_get_nothing() -> None:
    spec = parse_spec(
        {
            "instances": {
                "on": {"model": "a/b", "port": 8081},
                "off": {"model": "a/b", "port": 8082, "enable": False},
            }
        }
    )
    result = evaluate(spec, podman="/usr/bin/podman")
    assert list(result.instances) == ["on"]
    assert all("-off" not in name for name in result.unit_files)


def test_image_unit_loads_image_file_or_pulls_by_policy() -> None:
    spec = parse_spec(
        {
            "instances": {
                "a": {"model": "a/b", "port": 8081, "imageFile": "/nix/store/x-mock.tar.gz"},
                "b": {"model": "a/b", "port": 8082, "pull": "always"},
                "c": {"model": "a/b", "port": 8083, "pull": "never"},
                "d": {"model": "a/b", "port": 8084},
            }
        }
    )
    units = evaluate(spec, podman="/bin/podman").unit_files
    exec_a = unit_lines(units["huggingface-tgi-a-image.service"], "ExecStart")
    assert exec_a == ["/bin/podman load --input=/nix/store/x-mock.tar.gz"]
    # No network ordering when the image comes from a file (air-gapped hosts, VM tests).
    assert "network-online.target" not in units["huggingface-tgi-a-image.service"]
    assert unit_lines(units["huggingface-tgi-b-image.service"], "ExecStart") == [
        "/bin/podman pull ghcr.io/huggingface/text-generation-inference:3.3.7"
    ]
    assert unit_lines(units["huggingface-tgi-c-image.service"], "ExecStart") == [
        "/bin/podman image exists ghcr.io/huggingface/text-generation-inference:3.3.7"
    ]
    # Default policy "missing": pull only when podman does not have the image yet.
    (exec_d,) = unit_lines(units["huggingface-tgi-d-image.service"], "ExecStart")
    assert split_exec(exec_d) == [
        f"{SCRIPTS}/fetch-image.sh",
        "/bin/podman",
        "missing",
        "ghcr.io/huggingface/text-generation-inference:3.3.7",
    ]
    # The slow pull is never charged to the main unit's start timeout.
    assert unit_lines(units["huggingface-tgi-b-image.service"], "TimeoutStartSec") == ["infinity"]


def test_local_model_path_is_mounted_read_only() -> None:
    spec = parse_spec({"instances": {"local": {"model": "/srv/models/llama", "port": 8081}}})
    argv = evaluate(spec, podman="/bin/podman").instances["local"].podman_args
    assert "--volume=/srv/models/llama:/srv/models/llama:ro" in argv


def test_gpu_units_wait_for_the_cdi_generator() -> None:
    spec = parse_spec(
        {"instances": {"g": {"model": "a/b", "port": 8081, "gpus": [0]}, "c": {"model": "a/b", "port": 8082}}}
    )
    units = evaluate(spec, podman="/bin/podman").unit_files
    assert (
        "nvidia-container-toolkit-cdi-generator.service"
        in unit_lines(units["huggingface-tgi-g.service"], "After")[0]
    )
    assert "nvidia-container-toolkit-cdi-generator" not in units["huggingface-tgi-c.service"]


def test_api_key_file_becomes_a_user_only_env_file(tmp_path: Path) -> None:
    # Run the generated ExecStartPre for real: the key file's first line becomes API_KEY=..., mode 0400.
    spec = parse_spec(
        {"instances": {"k": {"model": "a/b", "port": 8080, "apiKeyFile": "/run/secrets/api-key", "rootful": True}}}
    )
    result = evaluate(spec, podman="/usr/bin/podman")
    text = result.unit_files["huggingface-tgi-k.service"]
    argv = result.instances["k"].podman_args
    assert "--env-file=/run/huggingface-tgi-k/api-key" in argv
    (pre,) = unit_lines(text, "ExecStartPre")
    assert pre.startswith("+")
    command = split_exec(pre.removeprefix("+"))
    assert command == [
        f"{SCRIPTS}/write-api-key-env.sh", "/run/secrets/api-key", "/run/huggingface-tgi-k/api-key", "root:root",
        "huggingface-tgi-k",
    ]  # fmt: skip
    command[0] = str(MODULE / "scripts" / "write-api-key-env.sh")
    key_file, env_file = tmp_path / "api-key", tmp_path / "run" / "api-key"
    env_file.parent.mkdir()
    key_file.write_text("s3cr3t key\\with $pecials\nsecond line\n")
    owner = f"{os.getuid()}:{os.getgid()}"
    run = subprocess.run([command[0], str(key_file), str(env_file), owner, command[4]], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert env_file.read_text() == "API_KEY=s3cr3t key\\with $pecials\n"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o400
    assert "s3cr3t" not in text and "s3cr3t" not in " ".join(argv)
    # A missing (or empty) key file fails the start with a message naming it.
    env_file.unlink()
    key_file.write_text("")
    run = subprocess.run([command[0], str(key_file), str(env_file), owner, command[4]], capture_output=True, text=True)
    assert run.returncode != 0 and f"apiKeyFile {key_file} is missing or empty" in run.stderr
    assert not env_file.exists()


# ------------------------------------------------------------------------- the bridge (nix/bridge.py)
ONE = {"instances": {"a": {"model": "org/m", "port": 8080}}}


def test_evaluate_passes_podman_shell_scripts_dir_and_target_to_the_core() -> None:
    # rootful: its ExecStopPost runs remove-container.sh (a rootless one runs podman rm itself)
    rootful = {"instances": {"a": {**ONE["instances"]["a"], "rootful": True}}}
    result = evaluate(parse_spec(rootful), podman="/opt/bin/podman", shell="/opt/bin/sh", scripts_dir="/opt/scripts",
                      systemd_version=252)
    text = result.unit_files["huggingface-tgi-a.service"]
    assert "ExecStart=/opt/bin/podman run " in text and "/opt/scripts/remove-container.sh" in text
    assert "RestartSteps" not in text
    assert all(body.startswith("#!/opt/bin/sh\n") for body in result.script_files.values()), result.script_files
    default = evaluate(parse_spec(rootful))
    assert f"ExecStart={DEFAULT_PODMAN} run " in default.unit_files["huggingface-tgi-a.service"]
    assert f"{DEFAULT_SCRIPTS_DIR}/remove-container.sh" in default.unit_files["huggingface-tgi-a.service"]
    assert all(body.startswith("#!/bin/bash\n") for body in default.script_files.values())
    assert "RestartSteps=5" in default.unit_files["huggingface-tgi-a.service"]


BROKEN = {"instances": {"a": {"model": "no model id", "port": 8080, "listenAddress": "nowhere"}}}


def test_check_and_evaluate_name_the_source_and_every_finding() -> None:
    for call in (lambda: check(parse_spec(BROKEN), "my.toml"), lambda: evaluate(parse_spec(BROKEN), source="my.toml")):
        with pytest.raises(SpecError) as err:
            call()
        first, *findings = str(err.value).split("\n")
        assert first == "my.toml is invalid:"
        assert sorted(line.split(":", 1)[0] for line in findings) == ["instances.a.listenAddress", "instances.a.model"]
    with pytest.raises(SpecError, match=r"^spec is invalid:\n"):
        check(parse_spec(BROKEN))
    warned = check(parse_spec({"instances": {"a": {"model": "org/m", "port": 8080, "image": "ghcr.io/x/y:latest"}}}))
    assert [w.path for w in warned] == ["instances.a.image"]


def test_a_nul_character_is_named_by_its_path() -> None:
    spec = parse_spec({"instances": {"a": {"model": "o/m", "port": 8080, "extraArgs": ["ok", "x\x00y"],
                                           "environment": {"K\x00": "v", "GOOD": "w\x00", "A B": "\x00"}}}})
    with pytest.raises(SpecError, match=r"^my\.toml is invalid:\ninstances\.a\.extraArgs\[1\]: contains a NUL"):
        evaluate(spec, source="my.toml")
    with pytest.raises(SpecError, match=r"^spec is invalid:\ninstances\.a\.extraArgs\[1\]: contains a NUL"):
        evaluate(spec)
    with pytest.raises(SpecError) as err:
        check(spec, "my.toml")
    assert str(err.value).split("\n") == [
        "my.toml is invalid:",
        "instances.a.extraArgs[1]: contains a NUL character (\\u0000); remove it",
        'instances.a.environment."K\\u0000": contains a NUL character (\\u0000); remove it',
        "instances.a.environment.GOOD: contains a NUL character (\\u0000); remove it",
        'instances.a.environment."A B": contains a NUL character (\\u0000); remove it',
    ]


def fake_nix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    bin_dir = tmp_path / "nix-bin"
    bin_dir.mkdir()
    script = bin_dir / "nix-instantiate"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


def test_nix_that_cannot_set_up_its_state_is_a_missing_tool_not_a_spec_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nix(tmp_path, monkeypatch, "echo \"warning: x\" >&2\necho \"error: could not set permissions on "
             "'/nix/var/nix/profiles/per-user' to 755: Operation not permitted\" >&2\nexit 1")
    with pytest.raises(ToolMissingError) as err:
        check(parse_spec(ONE))
    assert str(err.value) == (
        "Nix cannot run as this user (could not set permissions on '/nix/var/nix/profiles/per-user' to 755: "
        "Operation not permitted); run as root, or give Nix a state directory you own: "
        "NIX_STATE_DIR=$HOME/.local/state/nix tgi-nix ...")


def test_a_nix_failure_says_what_was_evaluated_with_nixs_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The input file the bridge hands over is real JSON of the instances, and NIX_REMOTE is kept as set.
    fake_nix(tmp_path, monkeypatch, 'echo "remote=[${NIX_REMOTE-unset}] args=$*" >&2\nfor a in "$@"; do f=$a; done\n'
             'cat "$f" >&2\necho >&2\necho "  error: boom  " >&2\nexit 1')
    monkeypatch.setenv("NIX_REMOTE", "daemon")
    with pytest.raises(NixError) as err:
        check(parse_spec(ONE))
    head, remote, payload, last = str(err.value).split("\n")
    assert head == "evaluating the Nix core failed:"
    assert remote.startswith("remote=[daemon] args=--eval --strict --json ") and "/eval.nix --argstr input " in remote
    data = json.loads(payload)
    assert data["checkOnly"] is True and data["instances"]["a"]["model"] == "org/m"
    assert last == "  error: boom"
    monkeypatch.delenv("NIX_REMOTE")
    with pytest.raises(NixError, match=r"remote=\[\] "):
        check(parse_spec(ONE))
    broken = tmp_path / "broken.nix"
    with pytest.raises(NixError, match=rf"^nix-instantiate --parse {broken} failed:\n"):
        parse_nix_file(broken)


def test_without_tgi_nix_root_the_packaged_core_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tgi_nix.nix import bridge

    monkeypatch.delenv("TGI_NIX_ROOT", raising=False)
    monkeypatch.setattr(bridge, "PACKAGED_MODULE", MODULE)
    assert module_dir() == MODULE
    monkeypatch.setattr(bridge, "PACKAGED_MODULE", tmp_path / "module")
    with pytest.raises(ToolMissingError) as err:
        module_dir()
    assert str(err.value) == (f"cannot find the Nix core (core/default.nix) in {tmp_path}/module (the installed "
                              "package); reinstall tgi-nix")


def test_missing_nix_and_core_say_how_to_get_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissingError) as err:
        nix_instantiate()
    assert str(err.value) == "nix-instantiate not found; install Nix (Debian/Ubuntu: apt-get install nix-bin)"
    monkeypatch.setenv("TGI_NIX_ROOT", str(tmp_path))
    with pytest.raises(ToolMissingError) as err:
        module_dir()
    assert str(err.value) == (
        f"cannot find the Nix core (core/default.nix) in {tmp_path}/modules/huggingface-tgi "
        f"(TGI_NIX_ROOT={tmp_path}); reinstall tgi-nix or point TGI_NIX_ROOT at a tgi-nix checkout")
    (tmp_path / "modules" / "huggingface-tgi" / "core").mkdir(parents=True)
    (tmp_path / "modules" / "huggingface-tgi" / "core" / "default.nix").write_text("{ }")
    assert module_dir() == tmp_path / "modules" / "huggingface-tgi"
    with pytest.raises(ToolMissingError) as err:
        checkout_root()
    assert str(err.value) == f"{tmp_path} is no tgi-nix checkout; run from one or set TGI_NIX_ROOT to one"
    (tmp_path / "flake.nix").write_text("{ }")
    assert checkout_root() == tmp_path
