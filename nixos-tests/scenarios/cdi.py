# Globals: machine, subtest, spec, TOKEN, podman_of. Both instances run rootless (the default) as
# the shared user: CDI devices reach a rootless container as bind mounts of the host's nodes.
for name in spec:
    machine.wait_for_unit(f"huggingface-tgi-{name}.service", timeout=600)


def container_env(container: str) -> dict[str, str]:
    """The environment the container was started with (CDI edits apply there, not to `podman exec`)."""
    raw = machine.succeed(f"{podman_of(container.removeprefix('huggingface-tgi-'))} exec {container} cat /proc/1/environ | tr '\\0' '\\n'")
    return dict(line.split("=", 1) for line in raw.splitlines() if "=" in line)


with subtest("the fake CDI device is injected into the instance that asks for it"):
    env = container_env("huggingface-tgi-accel")
    assert env.get("FAKE_GPU_VISIBLE") == "fake0", env
    assert env.get("FAKE_GPU_VENDOR") == "example.com", env
    machine.succeed(f"{podman_of('accel')} exec huggingface-tgi-accel test -c /dev/fakegpu0")
    machine.succeed("curl -fsS http://127.0.0.1:8080/health")

with subtest("a CPU-only instance gets no device"):
    assert "FAKE_GPU_VISIBLE" not in container_env("huggingface-tgi-plain")
    machine.fail(f"{podman_of('plain')} exec huggingface-tgi-plain test -e /dev/fakegpu0")
    devices = machine.succeed(
        f"{podman_of('plain')} inspect --format '{{{{json .HostConfig.Devices}}}}' huggingface-tgi-plain"
    ).strip()
    assert devices in ("[]", "null"), devices
