# Globals: machine, subtest, spec, TOKEN.
unit = "huggingface-tgi-sturdy.service"
container = "huggingface-tgi-sturdy"


def main_pid() -> str:
    return machine.succeed(f"systemctl show -P MainPID {unit}").strip()


def wait_healthy_again(old_pid: str) -> None:
    machine.wait_until_succeeds(f"test \"$(systemctl show -P MainPID {unit})\" != {old_pid}", timeout=300)
    machine.wait_for_unit(unit, timeout=600)
    machine.succeed("curl -fsS --max-time 5 http://127.0.0.1:8080/health")


machine.wait_for_unit(unit, timeout=600)

with subtest("killing the container: systemd restarts it and it is healthy again"):
    pid = main_pid()
    machine.succeed(f"podman kill --signal KILL {container}")
    wait_healthy_again(pid)
    assert int(machine.succeed(f"systemctl show -P NRestarts {unit}").strip()) >= 1


def dnat_rules() -> int:
    # netavark's port forwarding (nftables, or iptables on older hosts): one rule per live container.
    out = machine.succeed(
        "(nft list ruleset 2>/dev/null || iptables-save -t nat)"
        " | grep -cE 'dport 8080 .*(dnat (ip6? )?to |--to-destination)' || true"
    )
    return int(out.strip() or 0)


with subtest("killing conmon: the network is torn down and the restarted container answers on its port"):
    pid = main_pid()
    machine.succeed("pkill -KILL -x conmon")
    wait_healthy_again(pid)
    machine.wait_until_succeeds("curl -fsS --max-time 5 http://127.0.0.1:8080/health", timeout=60)
    assert dnat_rules() == 1, f"stale DNAT rules: {dnat_rules()}"

with subtest("killing conmon and the container together: same, from a fresh network namespace"):
    pid = main_pid()
    ctr_pid = machine.succeed(f"podman inspect --format '{{{{.State.Pid}}}}' {container}").strip()
    machine.succeed(f"pkill -KILL -x conmon; kill -KILL {ctr_pid}")
    wait_healthy_again(pid)
    machine.wait_until_succeeds("curl -fsS --max-time 5 http://127.0.0.1:8080/health", timeout=60)
    assert dnat_rules() == 1, f"stale DNAT rules: {dnat_rules()}"

with subtest("stop leaves no container behind"):
    machine.succeed(f"systemctl stop {unit}")
    assert machine.succeed("podman ps -aq").strip() == ""
    machine.fail("curl -fsS --max-time 2 http://127.0.0.1:8080/health")

with subtest("a port already taken fails the unit with a message naming the port"):
    machine.succeed("systemd-run --unit=port-squatter python3 -m http.server 8080 --bind 127.0.0.1")
    machine.wait_for_open_port(8080)
    machine.fail(f"systemctl start {unit}")
    machine.succeed(f"journalctl -u {unit} --no-pager | grep -E 'address already in use|8080' | grep -c 8080")
    machine.succeed("systemctl stop port-squatter.service")
    machine.succeed(f"systemctl reset-failed {unit}; systemctl start {unit}")
    machine.wait_for_unit(unit, timeout=600)
    machine.succeed("curl -fsS http://127.0.0.1:8080/health")
