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

with subtest("activating while loading, active only once /health is 200"):
    saw_loading = False
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        state = machine.succeed("systemctl show -P ActiveState huggingface-tgi-slow.service").strip()
        code = machine.succeed("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/health || true").strip()
        if state == "active":
            # No false-ready window: by the time systemd says active, the server is healthy.
            assert code == "200", f"unit active while /health answers {code}"
            break
        # "deactivating"/"inactive": the restart above is still stopping the previous run.
        assert state in ("activating", "deactivating", "inactive"), state
        if state == "activating" and code != "200":
            # Loading (503) or not listening yet (000): either way not ready, and systemd agrees.
            saw_loading = True
        time.sleep(1)
    else:
        journal = machine.succeed("journalctl -u huggingface-tgi-slow.service --no-pager | tail -n 40")
        raise AssertionError(f"huggingface-tgi-slow never became active; its journal:\n{journal}")
    assert saw_loading, "expected to observe the unit activating while /health was not yet 200"
    machine.wait_for_unit("tgi-consumer.service", timeout=120)
    assert machine.succeed("cat /run/consumer-status").strip() == "200"

with subtest("a container that exits while starting fails the unit at once, with the reason"):
    # startTimeout is 10min: failing within seconds means the poller saw conmon go, not a timeout.
    machine.wait_until_succeeds(
        "journalctl -u huggingface-tgi-crashy.service --no-pager"
        " | grep -c 'the container exited before http://127.0.0.1:8082/health answered 200'",
        timeout=300,
    )
    machine.succeed("journalctl -u huggingface-tgi-crashy.service --no-pager | grep -c 'not-a-number'")
    journal = machine.succeed(
        "journalctl -u huggingface-tgi-crashy.service -o short-monotonic --no-pager"
    ).splitlines()

    def first(text):
        line = next(x for x in journal if text in x)
        return float(line.split("]", 1)[0].lstrip("[ "))

    start, failed = first("Starting "), first("the container exited before")
    assert failed - start < 60, f"the start failed after {failed - start:.0f} s, not at once"

with subtest("a model that never loads fails the unit with a clear message"):
    machine.wait_until_succeeds(
        "journalctl -u huggingface-tgi-stuck.service --no-pager | grep -c 'not healthy within startTimeout (40s)'",
        timeout=600,
    )
    result = machine.succeed("systemctl show -P Result huggingface-tgi-stuck.service").strip()
    assert result in ("timeout", "success"), result  # "success" only while a restart is already under way
    # The timeout hits while ExecStartPost= (wait-ready) still polls: "Start-post operation timed out".
    machine.succeed("journalctl -u huggingface-tgi-stuck.service --no-pager | grep -ci 'start-post operation timed out'")
