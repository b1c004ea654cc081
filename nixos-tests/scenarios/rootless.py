# Globals: machine, subtest, spec, TOKEN.
import hashlib
import json

unit = "huggingface-tgi-solo.service"
container = "huggingface-tgi-solo"
uid = spec["solo"]["uid"]
# The instance's podman, as its user (what the health-check timers in user@<uid> run too).
podman = (
    f"cd / && runuser -u tgi-solo -- env HOME=/var/lib/huggingface-tgi/.rootless/tgi-solo "
    f"XDG_RUNTIME_DIR=/run/user/{uid} podman"
)


def main_pid() -> str:
    return machine.succeed(f"systemctl show -P MainPID {unit}").strip()


def healthy() -> None:
    machine.wait_for_unit(unit, timeout=600)
    machine.succeed("curl -fsS --max-time 5 http://127.0.0.1:8080/health")


healthy()

with subtest("podman and the container run as the instance's user, not root"):
    assert machine.succeed(f"ps -o user= -p {main_pid()}").strip() == "tgi-solo"
    assert machine.succeed("podman ps -q").strip() == "", "rootful podman must not see the container"
    out = machine.succeed(f"{podman} ps --format '{{{{.Names}}}} {{{{.Image}}}}'")
    assert f"{container} {spec['solo']['image']}" in out, out
    ctr_pid = machine.succeed(f"{podman} inspect --format '{{{{.State.Pid}}}}' {container}").strip()
    # Root inside the container is the user outside it.
    assert machine.succeed(f"stat -c %u /proc/{ctr_pid}").strip() == str(uid)
    assert machine.succeed("stat -c '%U %a' /var/lib/huggingface-tgi/solo").strip() == "tgi-solo 750"

with subtest("endpoints answer and the model id matches the spec"):
    info = json.loads(machine.succeed("curl -fsS http://127.0.0.1:8080/info"))
    assert info["model_id"] == "acme/rootless-model", info
    out = json.loads(
        machine.succeed(
            "curl -fsS -H 'Content-Type: application/json' "
            "-d '{\"inputs\":\"hello\",\"parameters\":{\"max_new_tokens\":4}}' http://127.0.0.1:8080/generate"
        )
    )
    assert out["generated_text"], out

with subtest("doctor asks the instance's own podman who holds its port (run from root's home)"):
    _, out = machine.execute("cd /root && tgi-nix doctor /etc/tgi-nix/spec.toml --json 2>/dev/null")
    (port,) = [f for f in json.loads(out)["findings"] if f["check"] == "port"]
    assert port["level"] == "ok" and "held by our container" in port["message"], port

with subtest("the token arrives through a user-only copy and appears nowhere else"):
    state = json.loads(machine.succeed("curl -fsS http://127.0.0.1:8080/mock/state"))
    assert state["hf_token_sha256_prefix"] == hashlib.sha256(TOKEN.encode()).hexdigest()[:12], state
    assert machine.succeed("stat -c '%U %a' /run/secrets/tgi.env").strip() == "root 600"
    # Rootless podman reads the copy root made in the unit's runtime directory.
    assert machine.succeed("stat -c '%U %a' /run/huggingface-tgi-solo/environment").strip() == "tgi-solo 400"
    assert machine.succeed("stat -c '%U %a' /run/huggingface-tgi-solo").strip() == "tgi-solo 700"
    machine.succeed("sed -n 's/^HF_TOKEN=//p' /run/secrets/tgi.env > /run/token-pattern")
    machine.fail(f"systemctl show {unit} | grep -F -f /run/token-pattern")
    machine.fail("cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -F -f /run/token-pattern")
    machine.fail("journalctl -b --no-pager | grep -F -f /run/token-pattern")

with subtest("the fake CDI device reaches the rootless container"):
    env = machine.succeed(f"{podman} exec {container} cat /proc/1/environ | tr '\\0' '\\n'")
    assert "FAKE_GPU_VISIBLE=fake0" in env.splitlines(), env
    machine.succeed(f"{podman} exec {container} test -c /dev/fakegpu0")

with subtest("the cache survives a restart (no second download)"):
    downloads = json.loads(machine.succeed("curl -fsS http://127.0.0.1:8080/mock/state"))["downloads"]
    machine.succeed(f"systemctl restart {unit}")
    healthy()
    state = json.loads(machine.succeed("curl -fsS http://127.0.0.1:8080/mock/state"))
    assert state["downloads"] == downloads, state

with subtest("killing the container: systemd restarts it and it is healthy again"):
    pid = main_pid()
    machine.succeed(f"{podman} kill --signal KILL {container}")
    machine.wait_until_succeeds(f"test \"$(systemctl show -P MainPID {unit})\" != {pid}", timeout=300)
    healthy()

with subtest("stop leaves no container behind"):
    machine.succeed(f"systemctl stop {unit}")
    assert machine.succeed(f"{podman} ps -aq").strip() == ""
    machine.fail("test -e /run/huggingface-tgi-solo/environment")
    machine.fail("curl -fsS --max-time 2 http://127.0.0.1:8080/health")
