# Globals: machine, subtest, spec, TOKEN, API_KEY, podman_of. Written for both modes: a rootful podman
# reads the root-only files, a rootless one user-only copies in the unit's runtime directory.
import hashlib
import json

machine.wait_for_unit("huggingface-tgi-secret.service", timeout=600)
podman = podman_of("secret")
# The unit's user (empty: root), who owns the copies podman reads.
owner = machine.succeed("systemctl show -P User huggingface-tgi-secret.service").strip() or "root"

with subtest("the env file is root-only"):
    assert machine.succeed("stat -c '%U %a' /run/secrets/tgi.env").strip() == "root 600"

with subtest("the mock received the token"):
    state = json.loads(machine.succeed("curl -fsS http://127.0.0.1:8080/mock/state"))
    assert state["hf_token_sha256_prefix"] == hashlib.sha256(TOKEN.encode()).hexdigest()[:12], state

with subtest("the token appears in no unit, property, argv, container config or journal"):
    # Search with a pattern file so the token is not in the searching commands' own argv.
    machine.succeed("sed -n 's/^HF_TOKEN=//p' /run/secrets/tgi.env > /run/token-pattern && test -s /run/token-pattern")
    machine.fail("grep -rFl -f /run/token-pattern /etc/systemd/ /run/systemd/system/ 2>/dev/null | grep .")
    machine.fail("systemctl show huggingface-tgi-secret.service huggingface-tgi-secret-image.service | grep -F -f /run/token-pattern")
    machine.fail("ps -eo args | grep -F -f /run/token-pattern")
    machine.fail("cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -F -f /run/token-pattern")
    inspect = machine.succeed(
        f"{podman} inspect --format '{{{{json .Config.CreateCommand}}}} {{{{json .Args}}}} {{{{json .Path}}}} "
        "{{json .Config.Labels}}' huggingface-tgi-secret"
    )
    assert TOKEN not in inspect, "token in podman's create command, args or labels"
    env_file = "/run/secrets/tgi.env" if owner == "root" else "/run/huggingface-tgi-secret/environment"
    assert f"--env-file={env_file}" in inspect, inspect
    assert machine.succeed(f"stat -c '%U %a' {env_file}").strip() == ("root 600" if owner == "root" else f"{owner} 400")
    machine.fail("journalctl -b --no-pager | grep -F -f /run/token-pattern")


with subtest("apiKeyFile: TGI demands the key, which appears nowhere but its files"):
    generate = (
        "curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' "
        "-d '{\"inputs\":\"hi\",\"parameters\":{\"max_new_tokens\":2}}' http://127.0.0.1:8080/generate"
    )
    assert machine.succeed(generate).strip() == "401"
    # The bearer header comes from a file so the key is not in curl's argv either.
    machine.succeed("printf 'Authorization: Bearer %s\\n' \"$(cat /run/secrets/api-key)\" > /run/auth-header")
    assert machine.succeed(generate.replace("curl ", "curl -H @/run/auth-header ")).strip() == "200"
    assert machine.succeed("stat -c '%U %a' /run/huggingface-tgi-secret/api-key").strip() == f"{owner} 400"
    machine.succeed("cp /run/secrets/api-key /run/key-pattern")
    machine.fail("grep -rFl -f /run/key-pattern /etc/systemd/ /run/systemd/system/ 2>/dev/null | grep .")
    machine.fail("systemctl show huggingface-tgi-secret.service | grep -F -f /run/key-pattern")
    machine.fail("cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -F -f /run/key-pattern")
    machine.fail("journalctl -b --no-pager | grep -F -f /run/key-pattern")
    assert API_KEY not in machine.succeed(f"{podman} inspect --format '{{{{json .Config.CreateCommand}}}}' huggingface-tgi-secret")

with subtest("stop leaves no container, no conmon and no copy of a secret"):
    machine.succeed("systemctl stop huggingface-tgi-secret.service")
    assert machine.succeed(f"{podman} ps -aq").strip() == ""
    machine.fail("pgrep -x conmon")
    machine.fail("test -e /run/huggingface-tgi-secret/api-key")
    machine.fail("test -e /run/huggingface-tgi-secret/environment")
