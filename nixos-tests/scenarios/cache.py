# Globals: machine, subtest, spec, TOKEN.
import re

MAIN = "huggingface-tgi-cached.service"
MODEL = "huggingface-tgi-cached-model.service"
TOTAL = int(spec["cached"]["environment"]["TGI_MOCK_MODEL_BYTES"])
MODEL_DIR = "/var/lib/huggingface-tgi/cached/hub/models--acme--cached-model"
# Where render-units' file goes on a host without NixOS (NixOS writes boot.kernelModules elsewhere).
MODULES_LOAD = "/etc/modules-load.d/huggingface-tgi.conf"


def state(unit: str) -> str:
    return machine.succeed(f"systemctl show -P ActiveState {unit}").strip()


def log(unit: str) -> str:
    return machine.succeed(f"journalctl --no-pager -o cat -u {unit}")


def last_count(pattern: str, unit: str) -> int:
    """The number in the unit's last journal line matching `pattern` (one group)."""
    counts = re.findall(pattern, log(unit))
    assert counts, log(unit)[-3000:]
    return int(counts[-1])


def fetched(unit: str) -> int:
    """Bytes the downloader fetched in the unit's latest download (the mock's own count)."""
    return last_count(r"Fetched (\d+) bytes from the Hub in this run", unit)


def script_fetched(unit: str) -> int:
    """Bytes the model unit's latest run added to the cache (its own closing line)."""
    return last_count(r"(\d+) bytes fetched", unit)


def cached_bytes() -> int:
    return int(machine.succeed(f"du -sb {MODEL_DIR} | cut -f1").strip())


with subtest("Hub unreachable at the first start: the model unit fails with the downloader's reason"):
    machine.wait_until_succeeds(f"systemctl is-failed {MODEL}", timeout=600)
    text = log(MODEL)
    assert "Cannot reach the Hub" in text, text[-3000:]
    assert state(MAIN) != "active"
    machine.fail("podman container exists huggingface-tgi-cached")

with subtest("cache dir created by tmpfiles with the intended owner and mode"):
    assert machine.succeed("stat -c '%U %G %a' /var/lib/huggingface-tgi/cached").strip() == "root root 750"
    assert machine.succeed("stat -c '%U %G %a' /var/lib/huggingface-tgi").strip() == "root root 755"

# The stand-in Hub: the mock's downloader only needs a TCP connection to HF_ENDPOINT.
machine.succeed(
    "systemd-run --unit=fake-hub python3 -m http.server --bind 0.0.0.0 9999"
)
machine.wait_until_succeeds("curl -fsS -o /dev/null http://127.0.0.1:9999/", timeout=60)

with subtest("first start: systemctl status of the model unit shows the download's bytes and rate"):
    machine.succeed(f"systemctl reset-failed {MODEL} {MAIN}")
    machine.succeed(f"systemctl start --no-block {MAIN}")
    machine.wait_until_succeeds(
        # `systemctl status` exits 3 for a unit that is not active (yet): only grep's status counts.
        f"{{ systemctl status --no-pager --full {MODEL} || true; }} | grep -E 'Downloading acme/cached-model: [0-9.]+ MB so far, [0-9.]+ MB/s'",
        timeout=300,
    )
    # Half-way or so (about 8 of 50 MB), to kill it in the middle next.
    machine.wait_until_succeeds(
        f"systemctl show -P StatusText {MODEL} | awk '$1 == \"Downloading\" && $3 + 0 >= 8 {{ ok = 1 }} END {{ exit !ok }}'",
        timeout=120,
    )
    assert state(MAIN) != "active"

with subtest("a download killed half-way resumes: the second run fetches only what was missing"):
    machine.succeed(f"systemctl stop {MODEL}")
    partial = cached_bytes()
    assert 0 < partial < TOTAL, partial
    machine.fail(f"test -e {MODEL_DIR}/.tgi-mock-complete")
    machine.succeed(f"systemctl start --no-block {MAIN}")
    machine.wait_for_unit(MAIN, timeout=600)
    second = fetched(MODEL)
    assert 0 < second < TOTAL, (second, TOTAL)
    assert 0 < script_fetched(MODEL) < TOTAL
    machine.succeed(f"test -f {MODEL_DIR}/.tgi-mock-complete")
    machine.succeed("curl -fsS http://127.0.0.1:8080/health")

with subtest("the server runs offline: HF_HUB_OFFLINE=1 in its container"):
    env = machine.succeed("podman inspect --format '{{range .Config.Env}}{{println .}}{{end}}' huggingface-tgi-cached")
    assert "HF_HUB_OFFLINE=1" in env.splitlines()

with subtest("with the Hub cut, restarting the model and main units downloads nothing and serves"):
    machine.succeed("systemctl stop fake-hub.service")
    machine.fail("curl -fsS -o /dev/null --max-time 5 http://127.0.0.1:9999/")
    machine.succeed(f"systemctl restart {MODEL} {MAIN}")
    machine.wait_for_unit(MAIN, timeout=600)
    assert state(MODEL) == "active"
    assert script_fetched(MODEL) == 0
    machine.wait_until_succeeds("curl -fsS http://127.0.0.1:8080/health", timeout=300)

with subtest("a stalled download fails the model unit with its reason; the server never starts"):
    machine.wait_until_succeeds("systemctl is-failed huggingface-tgi-stalled-model.service", timeout=600)
    reason = "no bytes arrived for 20s (downloadStallTimeout)"
    assert reason in log("huggingface-tgi-stalled-model.service")
    assert reason in machine.succeed("systemctl show -P StatusText huggingface-tgi-stalled-model.service")
    assert state("huggingface-tgi-stalled.service") != "active"
    assert machine.succeed("systemctl show -P ExecMainPID huggingface-tgi-stalled.service").strip() == "0"
    machine.fail("podman container exists huggingface-tgi-stalled")
    machine.fail("podman container exists huggingface-tgi-stalled-model")

with subtest("a reboot (no Hub, module loading locked) serves from the cache without downloading"):
    machine.shutdown()
    machine.start()
    machine.wait_for_unit(MAIN, timeout=600)
    assert script_fetched(MODEL) == 0
    machine.succeed("curl -fsS http://127.0.0.1:8080/health")

with subtest("at boot the units started with only the preloaded modules: loading others was locked"):
    # lock-kernel-modules.service ran before the units (Before=), after systemd-modules-load.
    assert machine.succeed("cat /proc/sys/kernel/modules_disabled").strip() == "1"
    machine.succeed("systemctl is-active lock-kernel-modules.service")
    # The core's list, as render-units writes it (NixOS: boot.kernelModules), all loaded.
    machine.succeed("tgi-nix render-units /etc/tgi-nix/spec.toml --podman /usr/bin/podman -o /tmp/rendered")
    listed = machine.succeed("grep -v '^#' /tmp/rendered/modules-load.d/huggingface-tgi.conf").split()
    assert "overlay" in listed and "bridge" in listed, listed
    for module in listed:
        machine.succeed(f"test -d /sys/module/{module}")

# NixOS rebuilds /etc at every boot, so only where render-units' file is a plain file can it go.
if machine.execute(f"test -f {MODULES_LOAD} && ! test -L {MODULES_LOAD}")[0] == 0:
    with subtest("without the modules-load file the unit cannot start"):
        machine.succeed(
            "systemctl disable huggingface-tgi-cached.service huggingface-tgi-stalled.service", f"rm {MODULES_LOAD}"
        )
        machine.shutdown()
        machine.start()
        assert machine.succeed("cat /proc/sys/kernel/modules_disabled").strip() == "1"
        machine.succeed("test ! -d /sys/module/bridge")
        machine.succeed(f"systemctl start --no-block {MAIN}")
        # The image unit fails first (its podman, too, needs the modules) and retries every 30 s;
        # the instance's start waits for it (RestartMode=direct) and never runs.
        image_unit = MAIN.replace(".service", "-image.service")
        machine.wait_until_succeeds(f"journalctl -b -u {image_unit} --no-pager | grep -c 'Failed with result'", timeout=300)
        assert machine.succeed(f"systemctl show -P ActiveState {MAIN}").strip() == "inactive"
        machine.succeed(f"systemctl list-jobs --no-legend | grep -F {MAIN}")
        print(machine.succeed(f"journalctl -b -u {image_unit} --no-pager | tail -n 20"))
        machine.succeed(f"systemctl stop {MAIN} {image_unit}")
