# Globals: machine, subtest, spec, TOKEN.
import time

with subtest("a unit ordered after the instance never sees a refused connection"):
    # A consumer that requires the instance and probes it once, the moment systemd starts it.
    machine.succeed(
        "mkdir -p /run/systemd/system && cat > /run/systemd/system/tgi-consumer.service <<'EOF'\n"
        "[Unit]\n"
        "Requires=huggingface-tgi-slow.service\n"
        "After=huggingface-tgi-slow.service\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        "ExecStart=/bin/sh -c 'curl -fsS -o /dev/null -w \"%%{http_code}\" http://127.0.0.1:8080/health > /run/consumer-status'\n"
        "EOF\n"
        "systemctl daemon-reload"
    )
    machine.succeed("systemctl restart --no-block huggingface-tgi-slow.service")
    machine.succeed("systemctl start --no-block tgi-consumer.service")


def watch_start(unit: str, port: int) -> set[str]:
    """Poll a starting unit until it is active; returns the /health codes seen while it was activating
    (000: nothing listening). Fails on any moment where systemd says active and /health is not 200."""
    seen: set[str] = set()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        state = machine.succeed(f"systemctl show -P ActiveState {unit}", timeout=60).strip()
        code = machine.succeed(f"curl -s -m 5 -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{port}/health || true", timeout=60).strip()
        if state == "active":
            # No false-ready window: by the time systemd says active, the server is healthy.
            assert code == "200", f"{unit} active while /health answers {code}"
            return seen
        # "deactivating"/"inactive": a restart is still stopping the previous run.
        assert state in ("activating", "deactivating", "inactive"), state
        if state == "activating":
            seen.add(code)
        time.sleep(1)
    journal = machine.succeed(f"journalctl -u {unit} --no-pager | tail -n 40")
    raise AssertionError(f"{unit} never became active; its journal:\n{journal}")


with subtest("activating while the port is closed (TGI loading), active only once /health is 200"):
    seen = watch_start("huggingface-tgi-slow.service", 8080)
    assert "000" in seen and "503" not in seen, seen
    machine.wait_for_unit("tgi-consumer.service", timeout=120)
    assert machine.succeed("cat /run/consumer-status").strip() == "200"

with subtest("activating while /health answers 503 (--health-before-ready), active only once it is 200"):
    machine.succeed("systemctl restart --no-block huggingface-tgi-eager.service")
    seen = watch_start("huggingface-tgi-eager.service", 8082)
    assert "503" in seen, seen

with subtest("a container that exits while starting fails the unit at once, with the reason"):
    # startTimeout is 10min: the unit must fail within seconds, seen by the readiness poll (conmon
    # gone) or, if the launcher dies before podman reports the container running, by podman's exit.
    unit = "huggingface-tgi-crashy.service"
    machine.wait_until_succeeds(f"journalctl -u {unit} --no-pager | grep -c 'Failed with result'", timeout=300)
    journal = machine.succeed(f"journalctl -u {unit} -o short-monotonic --no-pager").splitlines()

    def first(text):
        line = next(x for x in journal if text in x)
        return float(line.split("]", 1)[0].lstrip("[ "))

    start, failed = first("Starting "), first("Failed with result")
    # Failed because the container exited, not by startTimeout (10 min): the unit's result says so.
    # (A 180 s bound from the start failed at 197 s under TCG with four instances starting at once.)
    assert any("Failed with result 'exit-code'" in line for line in journal), "\n".join(journal[-30:])
    assert failed - start < 420, f"the start failed after {failed - start:.0f} s: was it the timeout?"
    # the launcher's own reason is in the unit's journal
    assert any("not-a-number" in line for line in journal), "\n".join(journal[-30:])
    # For the record (not a bound: a 15 s bound failed in CI at 52 s, which includes the stop's
    # cleanup, ExecStopPost's podman rm and the failure report, under TCG with four instances starting).
    died = first("not-a-number")
    noticed = [x for x in ("the container exited before", "Main process exited") if any(x in j for j in journal)]
    seen = min(first(x) for x in noticed) if noticed else failed
    print(f"crashy: launcher's error -> start seen failed {seen - died:.1f} s -> unit failed {failed - died:.1f} s")

with subtest("a model that never loads fails the unit with a clear message"):
    machine.wait_until_succeeds(
        "journalctl -u huggingface-tgi-stuck.service --no-pager | grep -c 'not healthy within startTimeout (40s)'",
        timeout=600,
    )
    result = machine.succeed("systemctl show -P Result huggingface-tgi-stuck.service").strip()
    assert result in ("timeout", "success"), result  # "success" only while a restart is already under way
    # systemd's own word that startTimeout hit. Usually while ExecStartPost= (wait-ready) polls
    # ("Start-post operation timed out"); in CI, with two VMs loading the host and four instances
    # starting, podman had not even reported the container started within 40 s ("Start operation ...").
    machine.succeed("journalctl -u huggingface-tgi-stuck.service --no-pager | grep -Ei 'start(-post)? operation timed out'")
