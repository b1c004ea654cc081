# Globals: machine, subtest, spec, TOKEN.
import hashlib
import json

machine.wait_for_unit("huggingface-tgi-secret.service", timeout=600)

with subtest("the env file is root-only"):
    assert machine.succeed("stat -c '%U %a' /run/secrets/tgi.env").strip() == "root 600"

with subtest("the mock received the token"):
    state = json.loads(machine.succeed("curl -fsS http://127.0.0.1:8080/mock/state"))
    assert state["hf_token_sha256_prefix"] == hashlib.sha256(TOKEN.encode()).hexdigest()[:12], state

with subtest("the token appears in no unit, property, argv, container config or journal"):
    machine.fail(f"grep -rFl -- '{TOKEN}' /etc/systemd/ /run/systemd/system/ 2>/dev/null | grep .")
    machine.fail(f"systemctl show huggingface-tgi-secret.service huggingface-tgi-secret-image.service | grep -F -- '{TOKEN}'")
    machine.fail(f"ps -eo args | grep -v grep | grep -F -- '{TOKEN}'")
    machine.fail(f"cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -F -- '{TOKEN}'")
    inspect = machine.succeed(
        "podman inspect --format '{{json .Config.CreateCommand}} {{json .Args}} {{json .Path}} {{json .Config.Labels}}' huggingface-tgi-secret"
    )
    assert TOKEN not in inspect, "token in podman's create command, args or labels"
    assert "--env-file=/run/secrets/tgi.env" in inspect
    machine.fail(f"journalctl -b --no-pager | grep -F -- '{TOKEN}'")
