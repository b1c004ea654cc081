# Both units active; containers named after the instances with the right image; loopback-only
# ports; the TGI API answers on each. Both run rootless (the default) as the one shared user, so
# the host keeps one copy of the image; CDI devices reach a rootless container as bind mounts of the
# host's nodes. Globals: machine, subtest, spec, TOKEN, podman_of.
import json

for name in spec:
    machine.wait_for_unit(f"huggingface-tgi-{name}.service", timeout=600)

with subtest("containers run with the configured image, named after the instance"):
    for name, inst in spec.items():
        rows = json.loads(machine.succeed(f"{podman_of(name)} ps --format json"))
        by_name = {row["Names"][0]: row for row in rows}
        row = by_name[f"huggingface-tgi-{name}"]
        assert row["State"] == "running", row
        assert row["Image"] == inst["image"], (row["Image"], inst["image"])

with subtest("one user, one storage, one copy of the image for both instances"):
    users = {machine.succeed(f"systemctl show -P User huggingface-tgi-{n}.service").strip() for n in spec}
    assert users == {"huggingface-tgi"}, users
    assert len({podman_of(n) for n in spec}) == 1
    stores = machine.succeed("ls /var/lib/huggingface-tgi/.rootless").split()
    assert stores == ["huggingface-tgi"], stores
    podman = podman_of(next(iter(spec)))
    image_ids = {
        machine.succeed(f"{podman} inspect --format '{{{{.Image}}}}' huggingface-tgi-{n}").strip() for n in spec
    }
    assert len(image_ids) == 1, image_ids
    # Root's storage holds no copy the units use (the harness's own source copy aside, nothing runs there).
    assert machine.succeed("podman ps -aq").strip() == ""

with subtest("published only on 127.0.0.1"):
    for name, inst in spec.items():
        port = inst["port"]
        mapping = machine.succeed(f"{podman_of(name)} port huggingface-tgi-{name}").strip()
        assert mapping == f"80/tcp -> 127.0.0.1:{port}", mapping
        bindings = json.loads(machine.succeed(
            f"{podman_of(name)} inspect --format '{{{{json .HostConfig.PortBindings}}}}' huggingface-tgi-{name}"))
        assert bindings == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}, bindings
        machine.succeed(f"curl -fsS http://127.0.0.1:{port}/health")
        # The host-side socket podman holds for the port is bound to loopback only.
        listeners = machine.succeed(f"ss -ltnH 'sport = :{port}' | awk '{{print $4}}'").split()
        assert listeners and all(addr.startswith("127.0.0.1:") for addr in listeners), listeners

with subtest("the TGI API answers"):
    for name, inst in spec.items():
        base = f"http://127.0.0.1:{inst['port']}"
        info = json.loads(machine.succeed(f"curl -fsS {base}/info"))
        assert info["model_id"] == inst["model"], info
        if "maxConcurrentRequests" in inst:
            assert info["max_concurrent_requests"] == inst["maxConcurrentRequests"], info
        body = json.dumps({"inputs": "What is NixOS?", "parameters": {"max_new_tokens": 8, "details": True}})
        gen = json.loads(machine.succeed(f"curl -fsS -H 'Content-Type: application/json' -d '{body}' {base}/generate"))
        assert gen["generated_text"] and gen["details"]["generated_tokens"] == 8, gen
        again = json.loads(machine.succeed(f"curl -fsS -H 'Content-Type: application/json' -d '{body}' {base}/generate"))
        assert again["generated_text"] == gen["generated_text"], "greedy generation must be deterministic"
        stream = machine.succeed(f"curl -fsSN -H 'Content-Type: application/json' -d '{body}' {base}/generate_stream")
        events = [json.loads(line[5:]) for line in stream.splitlines() if line.startswith("data:")]
        assert len(events) == 8 and events[-1]["generated_text"] and events[0]["generated_text"] is None, events
        assert "[DONE]" not in stream
        chat = json.dumps({"model": "tgi", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5})
        reply = json.loads(machine.succeed(f"curl -fsS -H 'Content-Type: application/json' -d '{chat}' {base}/v1/chat/completions"))
        assert reply["object"] == "chat.completion" and reply["choices"][0]["message"]["content"], reply
        metrics = machine.succeed(f"curl -fsS {base}/metrics")
        assert "tgi_request_count" in metrics and "tgi_request_duration_bucket" in metrics, metrics[:500]


def container_env(name: str) -> dict[str, str]:
    """The environment the container was started with (CDI edits apply there, not to `podman exec`)."""
    raw = machine.succeed(f"{podman_of(name)} exec huggingface-tgi-{name} cat /proc/1/environ | tr '\\0' '\\n'")
    return dict(line.split("=", 1) for line in raw.splitlines() if "=" in line)


def devices_in(name: str) -> set[str]:
    out = machine.succeed(f"{podman_of(name)} exec huggingface-tgi-{name} sh -c 'ls /dev/fake* 2>/dev/null || true'")
    return set(out.split())


with subtest("gpus = \"all\": every fake GPU and the control node through CDI, plus the vendor device"):
    env = container_env("alpha")
    assert env.get("FAKE_NVIDIA_GPU_0") == env.get("FAKE_NVIDIA_GPU_1") == "present", env
    assert env.get("NVIDIA_VISIBLE_DEVICES") == "void", env
    assert env.get("FAKE_GPU_VISIBLE") == "fake0" and env.get("FAKE_GPU_VENDOR") == "example.com", env
    assert devices_in("alpha") == {"/dev/fakenvidia0", "/dev/fakenvidia1", "/dev/fakenvidiactl", "/dev/fakegpu0"}
    machine.succeed(f"{podman_of('alpha')} exec huggingface-tgi-alpha test -c /dev/fakenvidia1")

with subtest("gpus = [ 1 ]: that GPU only, no other instance's device"):
    env = container_env("beta")
    assert env.get("FAKE_NVIDIA_GPU_1") == "present" and "FAKE_NVIDIA_GPU_0" not in env, env
    assert "FAKE_GPU_VISIBLE" not in env, env
    assert devices_in("beta") == {"/dev/fakenvidia1", "/dev/fakenvidiactl"}
    # The unit asked for that CDI name and nothing else.
    create = json.loads(machine.succeed(
        f"{podman_of('beta')} inspect --format '{{{{json .Config.CreateCommand}}}}' huggingface-tgi-beta"
    ))
    assert [a for a in create if a.startswith("--device")] == ["--device=nvidia.com/gpu=1"], create

with subtest("a pull that fails once: the instance's start waits for the image unit's retry, then comes up"):
    # As at a boot before the network is up: the image is missing and the registry unreachable (the
    # VM has no network) at the first try, present at the retry 30 s later.
    unit, image_unit, ref = "huggingface-tgi-beta.service", "huggingface-tgi-beta-image.service", spec["beta"]["image"]
    podman = podman_of("beta")
    image_id = machine.succeed(f"{podman} image inspect --format '{{{{.Id}}}}' {ref}").strip()
    machine.succeed(f"systemctl stop {unit} {image_unit}", f"{podman} untag {ref} {ref}")
    machine.fail(f"{podman} image exists {ref}")
    failures = f"journalctl -u {image_unit} --no-pager | grep -c 'Failed with result' || true"
    before = int(machine.succeed(failures).strip())
    machine.succeed(f"systemctl start --no-block {unit}")
    machine.wait_until_succeeds(f"test $({failures}) -gt {before}", timeout=300)
    # The failed try did not fail the instance's start ('dependency'): its job still waits.
    machine.succeed(f"systemctl list-jobs --no-legend | grep -F {unit}")
    machine.succeed(f"{podman} tag {image_id} {ref}")
    machine.wait_for_unit(unit, timeout=600)
    assert int(machine.succeed(f"systemctl show -P NRestarts {image_unit}").strip()) >= 1
    machine.fail(f"journalctl -u {unit} --no-pager | grep -F \"result 'dependency'\"")
    machine.succeed(f"curl -fsS http://127.0.0.1:{spec['beta']['port']}/health")
