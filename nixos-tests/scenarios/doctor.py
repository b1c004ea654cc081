# Globals: machine, subtest, spec, TOKEN. The machine has `tgi-nix` and the deployed spec.
import json

unit = "huggingface-tgi-doc.service"
env_file = spec["doc"]["environmentFile"]
SPEC = "/etc/tgi-nix/spec.toml"


def doctor(spec_path: str = SPEC) -> tuple[int, dict]:
    status, out = machine.execute(f"tgi-nix doctor {spec_path} --json 2>/tmp/doctor.err")
    return status, json.loads(out)


def finding(report: dict, check: str) -> dict:
    found = [f for f in report["findings"] if f["check"] == check]
    assert len(found) == 1, f"expected one {check} finding: {report['findings']}"
    return found[0]


machine.wait_for_unit(unit, timeout=600)

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
    machine.succeed("systemctl stop squatter.service")
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
