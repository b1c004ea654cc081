# Globals: machine, subtest, spec, TOKEN, podman_of. Every fault for the rootless instance (the
# default); for the rootful one the conmon kills, whose network cleanup (netavark's DNAT in a dead
# conmon's namespace, scripts/remove-container.sh) only a rootful instance has. A container kill, a stop
# and a taken port go through the same unit lines in both modes.


def main_pid(unit: str) -> str:
    return machine.succeed(f"systemctl show -P MainPID {unit}").strip()


def wait_healthy_again(unit: str, port: int, old_pid: str) -> None:
    machine.wait_until_succeeds(f"test \"$(systemctl show -P MainPID {unit})\" != {old_pid}", timeout=300)
    machine.wait_for_unit(unit, timeout=600)
    machine.wait_until_succeeds(f"curl -fsS --max-time 5 http://127.0.0.1:{port}/health", timeout=60)


def dnat_rules(port: int) -> int:
    # netavark's port forwarding (nftables, or iptables on older hosts): one rule per live container.
    out = machine.succeed(
        "(nft list ruleset 2>/dev/null || iptables-save -t nat)"
        f" | grep -cE 'dport {port} .*(dnat (ip6? )?to |--to-destination)' || true"
    )
    return int(out.strip() or 0)


def one_forward(name: str, port: int) -> None:
    """After a restart the port has one host listener (podman's reservation, or pasta's socket for a
    rootless one) and, rootful, one DNAT rule: nothing stale from the dead container."""
    listeners = machine.succeed(f"ss -ltnH 'sport = :{port}' | wc -l").strip()
    assert listeners == "1", f"{name}: {listeners} listeners on {port}"
    if spec[name].get("rootful"):
        assert dnat_rules(port) == 1, f"{name}: stale DNAT rules: {dnat_rules(port)}"


for name in spec:
    machine.wait_for_unit(f"huggingface-tgi-{name}.service", timeout=600)

for name, inst in sorted(spec.items()):
    unit = f"huggingface-tgi-{name}.service"
    container = f"huggingface-tgi-{name}"
    port = inst["port"]
    podman = podman_of(name)
    mode = "rootful" if inst.get("rootful") else "rootless"

    if mode == "rootless":
        with subtest(f"{mode}: killing the container: systemd restarts it and it is healthy again"):
            pid = main_pid(unit)
            machine.succeed(f"{podman} kill --signal KILL {container}")
            wait_healthy_again(unit, port, pid)
            assert int(machine.succeed(f"systemctl show -P NRestarts {unit}").strip()) >= 1

    with subtest(f"{mode}: killing conmon: the port is released and the restarted container answers"):
        pid = main_pid(unit)
        # The unit's main process is its container's conmon (--sdnotify=conmon).
        machine.succeed(f"kill -KILL {pid}")
        wait_healthy_again(unit, port, pid)
        one_forward(name, port)

    with subtest(f"{mode}: killing conmon and the container together: same, from a fresh network namespace"):
        pid = main_pid(unit)
        ctr_pid = machine.succeed(f"{podman} inspect --format '{{{{.State.Pid}}}}' {container}").strip()
        machine.succeed(f"kill -KILL {pid} {ctr_pid}")
        wait_healthy_again(unit, port, pid)
        one_forward(name, port)

    if mode == "rootful":
        continue

    with subtest(f"{mode}: an unhealthy server (503, process and port alive) is killed by the liveness check"):
        pid = main_pid(unit)
        # podman's startup check hands over to liveness once it passes (its timer: every 30 s); until
        # then failures do not count. Run it once while the server is healthy, as the timer would.
        machine.wait_until_succeeds(f"{podman} healthcheck run {container}", timeout=120)
        status = f"{podman} inspect --format '{{{{.State.Health.Status}}}}' {container}"
        assert machine.succeed(status).strip() == "healthy"
        machine.succeed(f"curl -fsS -X POST http://127.0.0.1:{port}/mock/unhealthy")
        machine.fail(f"curl -fsS --max-time 5 http://127.0.0.1:{port}/health")
        assert main_pid(unit) == pid, "nothing but the health check may restart it"
        # podman's check (every 30 s; the third failure in a row runs --health-on-failure=kill), run
        # by hand instead of waiting for the user manager's timer: the same check, the same counter.
        machine.wait_until_succeeds(
            f"{podman} healthcheck run {container} >/dev/null 2>&1;"
            f" test \"$(systemctl show -P MainPID {unit})\" != {pid}",
            timeout=300,
        )
        wait_healthy_again(unit, port, pid)
        machine.succeed(f"{podman} healthcheck run {container}")

    with subtest(f"{mode}: stop leaves no container and no process behind"):
        machine.succeed(f"systemctl stop {unit}")
        assert machine.succeed(f"{podman} ps -aq --filter name=^{container}$").strip() == ""
        # conmon names its container with -n (a pattern on the whole command line would also match
        # this shell's own and the other instance's).
        conmons = machine.execute("pgrep -a -x conmon")[1]
        assert not [line for line in conmons.splitlines() if f" -n {container} " in f"{line} "], conmons
        machine.fail(f"curl -fsS --max-time 2 http://127.0.0.1:{port}/health")

    with subtest(f"{mode}: a port already taken fails the unit with a message naming the port"):
        machine.succeed(f"systemd-run --unit=port-squatter python3 -m http.server {port} --bind 127.0.0.1")
        machine.wait_for_open_port(port)
        machine.fail(f"systemctl start {unit}")
        machine.succeed(f"journalctl -u {unit} --no-pager | grep -E 'address already in use|{port}' | grep -c {port}")
        # Stop the restarting unit first: a start while a restart is pending can leave it inactive.
        machine.succeed(f"systemctl stop {unit} port-squatter.service")
        machine.succeed(f"systemctl reset-failed {unit}; systemctl start {unit}")
        machine.wait_for_unit(unit, timeout=600)
        machine.succeed(f"curl -fsS http://127.0.0.1:{port}/health")
