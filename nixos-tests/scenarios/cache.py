# Globals: machine, subtest, spec, TOKEN.
import json

unit = "huggingface-tgi-cached.service"
# Where render-units' file goes on a host without NixOS (NixOS writes boot.kernelModules elsewhere).
MODULES_LOAD = "/etc/modules-load.d/huggingface-tgi.conf"


def downloads() -> int:
    return int(json.loads(machine.succeed("curl -fsS http://127.0.0.1:8080/mock/state"))["downloads"])


machine.wait_for_unit(unit, timeout=600)

with subtest("cache dir created by tmpfiles with the intended owner and mode"):
    assert machine.succeed("stat -c '%U %G %a' /var/lib/huggingface-tgi/cached").strip() == "root root 750"
    assert machine.succeed("stat -c '%U %G %a' /var/lib/huggingface-tgi").strip() == "root root 755"
    machine.succeed("test -f /var/lib/huggingface-tgi/cached/hub/models--acme--cached-model/.tgi-mock-complete")
    assert downloads() == 1

with subtest("systemctl restart does not download again"):
    machine.succeed(f"systemctl restart {unit}")
    machine.wait_until_succeeds("curl -fsS http://127.0.0.1:8080/health", timeout=300)
    assert downloads() == 1
    machine.succeed(f"journalctl -u {unit} --no-pager | grep -c 'found in cache'")

with subtest("a reboot does not download again"):
    machine.shutdown()
    machine.start()
    machine.wait_for_unit(unit, timeout=600)
    assert downloads() == 1

with subtest("at boot the unit started with only the preloaded modules: loading others was locked"):
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
        machine.succeed(f"systemctl disable {unit}", f"rm {MODULES_LOAD}")
        machine.shutdown()
        machine.start()
        assert machine.succeed("cat /proc/sys/kernel/modules_disabled").strip() == "1"
        machine.succeed("test ! -d /sys/module/bridge")
        machine.fail(f"systemctl start {unit}", timeout=600)
        # The image unit fails first (its podman, too, needs the modules); the instance never runs.
        image_unit = unit.replace(".service", "-image.service")
        assert machine.succeed(f"systemctl show -P Result {image_unit}").strip() != "success"
        machine.succeed(f"journalctl -b -u {unit} --no-pager | grep -c \"failed with result 'dependency'\"")
        print(machine.succeed(f"journalctl -b -u {image_unit} --no-pager | tail -n 20"))
