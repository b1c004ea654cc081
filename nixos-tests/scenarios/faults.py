# Globals: machine, subtest, spec, TOKEN.
unit = "huggingface-tgi-sturdy.service"
container = "huggingface-tgi-sturdy"


def main_pid() -> str:
    return machine.succeed(f"systemctl show -P MainPID {unit}").strip()


def wait_healthy_again(old_pid: str) -> None:
    machine.wait_until_succeeds(f"test \"$(systemctl show -P MainPID {unit})\" != {old_pid}", timeout=300)
    machine.wait_for_unit(unit, timeout=600)
    machine.succeed("curl -fsS http://127.0.0.1:8080/health")


machine.wait_for_unit(unit, timeout=600)

with subtest("killing the container: systemd restarts it and it is healthy again"):
    pid = main_pid()
    machine.succeed(f"podman kill --signal KILL {container}")
    wait_healthy_again(pid)
    assert int(machine.succeed(f"systemctl show -P NRestarts {unit}").strip()) >= 1

# Not covered: SIGKILL of conmon. The container then outlives conmon, the cleanup in ExecStopPost
# cannot see the netns (it was mounted in the main process's private mount namespace), netavark's DNAT
# rule for the dead container stays and shadows the next container's rule. See docs/hardening.md.

with subtest("stop leaves no container behind"):
    machine.succeed(f"systemctl stop {unit}")
    assert machine.succeed("podman ps -aq").strip() == ""
    machine.fail("curl -fsS --max-time 2 http://127.0.0.1:8080/health")

with subtest("a port already taken fails the unit with a message naming the port"):
    machine.succeed("systemd-run --unit=port-squatter python3 -m http.server 8080 --bind 127.0.0.1")
    machine.wait_for_open_port(8080)
    machine.fail(f"systemctl start {unit}")
    machine.succeed(f"journalctl -u {unit} --no-pager | grep -E 'address already in use|8080' | grep -q 8080")
    machine.succeed("systemctl stop port-squatter.service")
    machine.succeed(f"systemctl reset-failed {unit}; systemctl start {unit}")
    machine.wait_for_unit(unit, timeout=600)
    machine.succeed("curl -fsS http://127.0.0.1:8080/health")
