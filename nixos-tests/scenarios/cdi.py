# Globals: machine, subtest, spec, TOKEN.
for name in spec:
    machine.wait_for_unit(f"huggingface-tgi-{name}.service", timeout=600)

with subtest("the fake CDI device is injected into the instance that asks for it"):
    assert machine.succeed("podman exec huggingface-tgi-accel printenv FAKE_GPU_VISIBLE").strip() == "fake0"
    assert machine.succeed("podman exec huggingface-tgi-accel printenv FAKE_GPU_VENDOR").strip() == "example.com"
    machine.succeed("podman exec huggingface-tgi-accel test -c /dev/fakegpu0")
    machine.succeed("curl -fsS http://127.0.0.1:8080/health")

with subtest("a CPU-only instance gets no device"):
    machine.fail("podman exec huggingface-tgi-plain printenv FAKE_GPU_VISIBLE")
    machine.fail("podman exec huggingface-tgi-plain test -e /dev/fakegpu0")
    devices = machine.succeed("podman inspect --format '{{json .HostConfig.Devices}}' huggingface-tgi-plain").strip()
    assert devices in ("[]", "null"), devices
