# Globals: machine, subtest, spec, TOKEN, API_KEY, podman_of. The machine has `tgi-nix` and the
# deployed spec. First the secrets (written for both modes: a rootful podman reads the root-only
# files, a rootless one user-only copies in the unit's runtime directory), then `tgi-nix doctor`,
# then what a stop leaves behind.
import hashlib
import json

unit = "huggingface-tgi-doc.service"
env_file = spec["doc"]["environmentFile"]
key_file = spec["doc"]["apiKeyFile"]
SPEC = "/etc/tgi-nix/spec.toml"
podman = podman_of("doc")


def doctor(spec_path: str = SPEC) -> tuple[int, dict]:
    status, out = machine.execute(f"tgi-nix doctor {spec_path} --json 2>/tmp/doctor.err")
    return status, json.loads(out)


def finding(report: dict, check: str) -> dict:
    found = [f for f in report["findings"] if f["check"] == check]
    assert len(found) == 1, f"expected one {check} finding: {report['findings']}"
    return found[0]


machine.wait_for_unit(unit, timeout=600)
# The unit's user (empty: root), who owns the copies podman reads.
owner = machine.succeed("systemctl show -P User huggingface-tgi-doc.service").strip() or "root"

with subtest("the env file is root-only"):
    assert machine.succeed(f"stat -c '%U %a' {env_file}").strip() == "root 600"

with subtest("the mock received the token"):
    state = json.loads(machine.succeed("curl -fsS http://127.0.0.1:8080/mock/state"))
    assert state["hf_token_sha256_prefix"] == hashlib.sha256(TOKEN.encode()).hexdigest()[:12], state

with subtest("the token appears in no unit, property, argv, container config or journal"):
    # Search with a pattern file so the token is not in the searching commands' own argv.
    machine.succeed(f"sed -n 's/^HF_TOKEN=//p' {env_file} > /run/token-pattern && test -s /run/token-pattern")
    machine.fail("grep -rFl -f /run/token-pattern /etc/systemd/ /run/systemd/system/ 2>/dev/null | grep .")
    machine.fail("systemctl show huggingface-tgi-doc.service huggingface-tgi-doc-image.service | grep -F -f /run/token-pattern")
    machine.fail("ps -eo args | grep -F -f /run/token-pattern")
    machine.fail("cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -F -f /run/token-pattern")
    inspect = machine.succeed(
        f"{podman} inspect --format '{{{{json .Config.CreateCommand}}}} {{{{json .Args}}}} {{{{json .Path}}}} "
        "{{json .Config.Labels}}' huggingface-tgi-doc"
    )
    assert TOKEN not in inspect, "token in podman's create command, args or labels"
    read_by_podman = env_file if owner == "root" else "/run/huggingface-tgi-doc/environment"
    assert f"--env-file={read_by_podman}" in inspect, inspect
    assert machine.succeed(f"stat -c '%U %a' {read_by_podman}").strip() == ("root 600" if owner == "root" else f"{owner} 400")
    machine.fail("journalctl -b --no-pager | grep -F -f /run/token-pattern")


with subtest("apiKeyFile: TGI demands the key, which appears nowhere but its files"):
    generate = (
        "curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' "
        "-d '{\"inputs\":\"hi\",\"parameters\":{\"max_new_tokens\":2}}' http://127.0.0.1:8080/generate"
    )
    assert machine.succeed(generate).strip() == "401"
    # The bearer header comes from a file so the key is not in curl's argv either.
    machine.succeed(f"printf 'Authorization: Bearer %s\\n' \"$(cat {key_file})\" > /run/auth-header")
    assert machine.succeed(generate.replace("curl ", "curl -H @/run/auth-header ")).strip() == "200"
    assert machine.succeed("stat -c '%U %a' /run/huggingface-tgi-doc/api-key").strip() == f"{owner} 400"
    machine.succeed(f"cp {key_file} /run/key-pattern")
    machine.fail("grep -rFl -f /run/key-pattern /etc/systemd/ /run/systemd/system/ 2>/dev/null | grep .")
    machine.fail("systemctl show huggingface-tgi-doc.service | grep -F -f /run/key-pattern")
    machine.fail("cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -F -f /run/key-pattern")
    machine.fail("journalctl -b --no-pager | grep -F -f /run/key-pattern")
    assert API_KEY not in machine.succeed(f"{podman} inspect --format '{{{{json .Config.CreateCommand}}}}' huggingface-tgi-doc")

with subtest("a healthy deployment passes every check"):
    status, report = doctor()
    assert status == 0 and report["ok"], report
    assert [f for f in report["findings"] if f["level"] != "ok"] == [], report
    assert finding(report, "podman")["message"].startswith("podman 5."), report
    assert "held by our container" in finding(report, "port")["message"], report
    assert "active" in finding(report, "unit")["message"], report
    assert "example.com/gpu=fake0 declared in /etc/cdi" in finding(report, "cdi")["message"], report
    # The report shows the token file's state, never the token.
    assert TOKEN not in json.dumps(report)

with subtest("a token file other users can read fails, with the chmod to run"):
    machine.succeed(f"chmod 0644 {env_file}")
    status, report = doctor()
    token = finding(report, "token")
    assert status != 0 and token["level"] == "fail", report
    assert "0644" in token["message"] and token["fix"] == f"chmod 0600 {env_file}", token
    machine.succeed("grep -q 'check(s) failed' /tmp/doctor.err")
    machine.succeed(f"chmod 0600 {env_file}")

with subtest("a CDI device no spec declares fails, naming the device"):
    machine.succeed("mv /etc/cdi/example-gpu.json /root/example-gpu.json")
    status, report = doctor()
    cdi = finding(report, "cdi")
    assert status != 0 and cdi["level"] == "fail" and "example.com/gpu=fake0" in cdi["message"], report
    machine.succeed("mv /root/example-gpu.json /etc/cdi/example-gpu.json")

with subtest("a port taken by another program fails, naming the program; a failed unit shows its log"):
    machine.succeed(f"systemctl stop {unit}")
    machine.succeed("systemd-run --unit=squatter python3 -m http.server 8080 --bind 127.0.0.1")
    machine.wait_for_open_port(8080)
    machine.fail(f"systemctl start {unit}")
    status, report = doctor()
    port, state = finding(report, "port"), finding(report, "unit")
    assert status != 0 and port["level"] == "fail" and "python3" in port["message"], port
    assert "instances.doc.port" in port["fix"], port
    assert state["level"] == "fail" and "failed" in state["message"], state
    assert any("8080" in line for line in state["details"]), state
    # The unit is between restarts (Restart=on-failure): stop it, so the start below is a fresh one
    # (a start while a restart is pending was seen to leave the unit inactive).
    machine.succeed(f"systemctl stop {unit} squatter.service")
    machine.succeed(f"systemctl reset-failed {unit}; systemctl start {unit}")
    machine.wait_for_unit(unit, timeout=600)
    status, report = doctor()
    assert status == 0, report

with subtest("a model larger than the free disk fails, with the size it needs"):
    machine.succeed(
        "sed 's#HuggingFaceTB/SmolLM2-135M-Instruct#meta-llama/Llama-4-Scout-17B-16E-Instruct#' "
        f"{SPEC} > /root/big.toml"
    )
    status, report = doctor("/root/big.toml")
    disk = finding(report, "disk")
    assert status != 0 and disk["level"] == "fail" and "needs 218.0 GB more" in disk["message"], disk

with subtest("stop leaves no container, no conmon and no copy of a secret"):
    machine.succeed("systemctl stop huggingface-tgi-doc.service")
    assert machine.succeed(f"{podman} ps -aq").strip() == ""
    machine.fail("pgrep -x conmon")
    machine.fail("test -e /run/huggingface-tgi-doc/api-key")
    machine.fail("test -e /run/huggingface-tgi-doc/environment")
