# Globals: machine, subtest, spec, TOKEN, API_KEY, podman_of.
import hashlib
import json

unit = "huggingface-tgi-solo.service"
container = "huggingface-tgi-solo"
# The uid the module derived from the name (no uid in the spec).
uid = machine.succeed("id -u tgi-solo").strip()
# The instance's podman, as its user (what the health-check timers in user@<uid> run too).
podman = podman_of("solo")


def main_pid() -> str:
    return machine.succeed(f"systemctl show -P MainPID {unit}").strip()


def healthy() -> None:
    machine.wait_for_unit(unit, timeout=600)
    machine.succeed("curl -fsS --max-time 5 http://127.0.0.1:8080/health")


healthy()

with subtest("the derived uid is the one the units name; each user has its own subordinate ids"):
    assert 40000 <= int(uid) < 60000, uid
    assert f"user@{uid}.service" in machine.succeed(f"systemctl show -P Requires {unit}")
    shared_uid = machine.succeed("id -u huggingface-tgi").strip()
    assert shared_uid != uid
    machine.wait_for_unit("huggingface-tgi-shared.service", timeout=600)
    assert machine.succeed("systemctl show -P User huggingface-tgi-shared.service").strip() == "huggingface-tgi"
    ranges = [machine.succeed(f"grep '^{u}:' /etc/subuid").strip() for u in ("tgi-solo", "huggingface-tgi")]
    starts = {int(r.split(":")[1]) for r in ranges}
    assert len(starts) == 2, ranges
    for u in ("tgi-solo", "huggingface-tgi"):
        machine.succeed(f"test -e /var/lib/systemd/linger/{u}")

with subtest("podman and the container run as the instance's user, not root"):
    assert machine.succeed(f"ps -o user= -p {main_pid()}").strip() == "tgi-solo"
    assert machine.succeed("podman ps -q").strip() == "", "rootful podman must not see the containers"
    out = machine.succeed(f"{podman} ps --format '{{{{.Names}}}} {{{{.Image}}}}'")
    assert f"{container} {spec['solo']['image']}" in out, out
    assert "huggingface-tgi-shared" not in out, "another user's containers are out of this user's podman's sight"
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

with subtest("doctor checks each user and asks the instance's own podman who holds its port (from root's home)"):
    _, out = machine.execute("cd /root && tgi-nix doctor /etc/tgi-nix/spec.toml --json 2>/dev/null")
    findings = json.loads(out)["findings"]
    (port,) = [f for f in findings if f["check"] == "port" and f["subject"] == "solo"]
    assert port["level"] == "ok" and "held by our container" in port["message"], port
    # Each user: its uid, subordinate ids, lingering and a podman that runs rootless as it.
    users = {f["subject"]: f for f in findings if f["check"] == "user"}
    assert set(users) == {"solo", "shared"} and all(f["level"] == "ok" for f in users.values()), users
    assert users["solo"]["message"].startswith(f"tgi-solo: uid {uid}, "), users

with subtest("the token arrives through a user-only copy and appears nowhere else"):
    state = json.loads(machine.succeed("curl -fsS http://127.0.0.1:8080/mock/state"))
    assert state["hf_token_sha256_prefix"] == hashlib.sha256(TOKEN.encode()).hexdigest()[:12], state
    assert machine.succeed("stat -c '%U %a' /var/lib/secrets/tgi.env").strip() == "root 600"
    # Rootless podman reads the copy root made in the unit's runtime directory.
    assert machine.succeed("stat -c '%U %a' /run/huggingface-tgi-solo/environment").strip() == "tgi-solo 400"
    assert machine.succeed("stat -c '%U %a' /run/huggingface-tgi-solo").strip() == "tgi-solo 700"
    machine.succeed("sed -n 's/^HF_TOKEN=//p' /var/lib/secrets/tgi.env > /run/token-pattern")
    machine.fail(f"systemctl show {unit} | grep -F -f /run/token-pattern")
    machine.fail("cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -F -f /run/token-pattern")
    machine.fail("journalctl -b --no-pager | grep -F -f /run/token-pattern")

with subtest("the fake CDI device reaches the rootless container; the instance without one gets none"):
    env = machine.succeed(f"{podman} exec {container} cat /proc/1/environ | tr '\\0' '\\n'")
    assert "FAKE_GPU_VISIBLE=fake0" in env.splitlines(), env
    machine.succeed(f"{podman} exec {container} test -c /dev/fakegpu0")
    shared_env = machine.succeed(f"{podman_of('shared')} exec huggingface-tgi-shared cat /proc/1/environ")
    assert "FAKE_GPU" not in shared_env and "NVIDIA" not in shared_env, shared_env
    machine.fail(f"{podman_of('shared')} exec huggingface-tgi-shared sh -c 'ls /dev/fake*'")

with subtest("imageFile: the image unit loaded the archive into the user's own storage"):
    image_unit = "huggingface-tgi-solo-image.service"
    assert machine.succeed(f"systemctl show -P User {image_unit}").strip() == "tgi-solo"
    machine.succeed(f"journalctl -u {image_unit} --no-pager | grep -F 'Loaded image: localhost/tgi-mock:latest'")
    machine.succeed(f"{podman} image exists localhost/tgi-mock:latest")
    # Root's copy is not what runs: the running container's image is in the user's storage.
    storage = machine.succeed(f"{podman} info --format '{{{{.Store.GraphRoot}}}}'").strip()
    assert storage.startswith("/var/lib/huggingface-tgi/.rootless/tgi-solo/"), storage

with subtest("the cache survives a restart (no second download)"):
    downloads = json.loads(machine.succeed("curl -fsS http://127.0.0.1:8080/mock/state"))["downloads"]
    machine.succeed(f"systemctl restart {unit}")
    healthy()
    state = json.loads(machine.succeed("curl -fsS http://127.0.0.1:8080/mock/state"))
    assert state["downloads"] == downloads, state

with subtest("the shared user's instance: apiKeyFile through a user-only copy"):
    shared = podman_of("shared")
    assert machine.succeed(f"{shared} ps --format '{{{{.Names}}}}'").split() == ["huggingface-tgi-shared"]
    assert machine.succeed("stat -c '%U %a' /run/huggingface-tgi-shared/api-key").strip() == "huggingface-tgi 400"
    gen = (
        "curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' "
        "-d '{\"inputs\":\"hi\",\"parameters\":{\"max_new_tokens\":2}}' http://127.0.0.1:8081/generate"
    )
    assert machine.succeed(gen).strip() == "401"
    machine.succeed("printf 'Authorization: Bearer %s\\n' \"$(cat /var/lib/secrets/api-key)\" > /run/auth-header")
    assert machine.succeed(gen.replace("curl ", "curl -H @/run/auth-header ")).strip() == "200"

with subtest("a reboot (module loading locked): lingering starts both users' managers, the units come up, the cache stays"):
    downloads = json.loads(machine.succeed("curl -fsS http://127.0.0.1:8080/mock/state"))["downloads"]
    machine.shutdown()
    machine.start()
    healthy()
    machine.wait_for_unit("huggingface-tgi-shared.service", timeout=600)
    assert machine.succeed("cat /proc/sys/kernel/modules_disabled").strip() == "1"
    for u in (uid, machine.succeed("id -u huggingface-tgi").strip()):
        machine.succeed(f"systemctl is-active user@{u}.service")
    state = json.loads(machine.succeed("curl -fsS http://127.0.0.1:8080/mock/state"))
    assert state["downloads"] == downloads, state
    # The rootless list: overlay and tun (pasta), no netfilter modules.
    machine.succeed("tgi-nix render-units /etc/tgi-nix/spec.toml --podman /usr/bin/podman -o /tmp/rendered")
    listed = machine.succeed("grep -v '^#' /tmp/rendered/modules-load.d/huggingface-tgi.conf").split()
    assert listed == ["overlay", "tun"], listed

with subtest("stop leaves no container, no conmon and no copy of a secret"):
    machine.succeed(f"systemctl stop {unit} huggingface-tgi-shared.service")
    assert machine.succeed(f"{podman} ps -aq").strip() == ""
    assert machine.succeed(f"{podman_of('shared')} ps -aq").strip() == ""
    machine.fail("pgrep -x conmon")
    machine.fail("test -e /run/huggingface-tgi-solo/environment")
    machine.fail("test -e /run/huggingface-tgi-shared/api-key")
    machine.fail("curl -fsS --max-time 2 http://127.0.0.1:8080/health")
