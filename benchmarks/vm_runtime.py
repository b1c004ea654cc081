#!/usr/bin/env python3
"""Runtime figures from one Debian VM (QEMU TCG) running the generated unit against the mock TGI image.

Prints:
- boot-to-shell seconds;
- start-to-healthy of the generated unit vs a bare `podman run -d` of the same image, argv and load delay
  in the same VM (median of RUNS each, cache warm; ratio goal <= 1.10);
- the false-ready window: seconds the unit was `active` while /health was not 200 (goal 0), sampled
  inside the guest every ~0.1 s during every start;
- crash-to-healthy: `podman kill` of the container until /health is 200 again (includes RestartSec);
  the same after SIGKILL of conmon (ExecStopPost then re-attaches the netns to clean up).

Run: .venv/bin/python benchmarks/vm_runtime.py   (about 5 min)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

from tgi_nix.generate.render import render_unit_tree
from tgi_nix.nix.bridge import evaluate
from tgi_nix.spec.loader import parse_spec
from tgi_nix.testing.vm import Machine, ensure_image, install_units, tag_mock_image

RUNS = 3
LOAD_DELAY = "3"
UNIT = "huggingface-tgi-bench"
SPEC = {
    "instances": {
        "bench": {"model": "acme/bench", "port": 8080, "environment": {"TGI_MOCK_LOAD_DELAY": LOAD_DELAY}}
    }
}

# Guest-side sampler: start something, then print "<t> <unit state> <http code>" every ~0.1 s until
# /health is 200 on PORT (and, for the unit, systemd says active). Timestamps from the guest clock.
SAMPLER = r"""
start_cmd=$1; port=$2; unit=$3
t0=$(date +%s.%N)
eval "$start_cmd"
while :; do
  t=$(date +%s.%N)
  # is-active prints the state and exits non-zero unless active: keep only what it printed.
  if [ -n "$unit" ]; then state=$(systemctl is-active "$unit" 2>/dev/null || true); else state=none; fi
  state=${state:-unknown}
  code=$(curl -s -o /dev/null --max-time 1 -w '%{http_code}' "http://127.0.0.1:$port/health")
  echo "$t $state $code"
  if [ "$code" = 200 ] && { [ -z "$unit" ] || [ "$state" = active ]; }; then break; fi
  if [ $(( ${t%.*} - ${t0%.*} )) -gt 300 ]; then echo timeout; break; fi
  sleep 0.1
done
echo "t0 $t0"
"""


def sample(machine: Machine, start_cmd: str, port: int, unit: str = "") -> tuple[float, float, float]:
    """Run the sampler; return (seconds until healthy and active, false-ready seconds, first /health 200)."""
    out = machine.succeed(f"bash /root/sampler.sh '{start_cmd}' {port} '{unit}'", timeout=400)
    lines = out.strip().splitlines()
    t0 = float(lines[-1].split()[1])
    rows = [line.split() for line in lines[:-1] if line != "timeout"]
    if not rows or rows[-1][2] != "200":
        raise SystemExit(f"never healthy: {out[-500:]}")
    false_ready = 0.0
    for (t, state, code), (t_next, _, _) in zip(rows, rows[1:], strict=False):
        if state == "active" and code != "200":
            false_ready += float(t_next) - float(t)
    first_200 = next(float(t) for t, _, code in rows if code == "200") - t0
    return float(rows[-1][0]) - t0, false_ready, first_200


def main() -> int:
    spec = parse_spec(SPEC)
    core = evaluate(spec, podman="/usr/bin/podman")
    facts = core.instances["bench"]
    image = spec.instances["bench"].image
    ensure_image()
    with tempfile.TemporaryDirectory() as tmp, Machine(name="bench") as machine:
        render = Path(tmp) / "units"
        for rel, text in render_unit_tree(core).items():
            (render / rel).parent.mkdir(parents=True, exist_ok=True)
            (render / rel).write_text(text)
        sampler = Path(tmp) / "sampler.sh"
        sampler.write_text(SAMPLER)

        machine.start()
        print(f"boot to shell:                 {machine.boot_seconds:.1f} s", flush=True)
        machine.copy_from_host(sampler, "/root/sampler.sh")
        install_units(machine, render)
        tag_mock_image(machine, image)
        machine.succeed(f"systemctl start {UNIT}-image.service")
        # Warm the cache once so both sides measure a restart, not the simulated download.
        machine.succeed(f"systemctl start {UNIT}.service", timeout=400)
        machine.succeed(f"systemctl stop {UNIT}.service")

        bare_argv = " ".join(facts.launcher_args)
        bare_cmd = (
            f"podman run -d --rm --name bare --init -p 127.0.0.1:8081:80 -e TGI_MOCK_LOAD_DELAY={LOAD_DELAY} "
            f"-v /var/lib/bare:/data {image} {bare_argv} >/dev/null"
        )
        machine.succeed("mkdir -p /var/lib/bare")
        machine.succeed(
            bare_cmd.replace("-d --rm --name bare", "-d --rm --name warm"), "sleep 8", "podman rm -f warm"
        )

        unit_times, bare_times, false_ready, unit_serving = [], [], [], []
        for _ in range(RUNS):
            seconds, window, serving = sample(
                machine, f"systemctl start --no-block {UNIT}.service", 8080, f"{UNIT}.service"
            )
            unit_times.append(seconds)
            false_ready.append(window)
            unit_serving.append(serving)
            machine.succeed(f"systemctl stop {UNIT}.service")
            seconds, _, _ = sample(machine, bare_cmd, 8081)
            bare_times.append(seconds)
            machine.succeed("podman rm -f bare")

        machine.succeed(f"systemctl start {UNIT}.service", timeout=400)
        crash, _, _ = sample(
            machine, f"podman kill --signal KILL {UNIT} >/dev/null; sleep 0.5", 8080, f"{UNIT}.service"
        )
        # The old container keeps serving until podman notices conmon is gone, so measure until the
        # restarted unit (a new main PID) is active and healthy.
        conmon, _, _ = sample(
            machine,
            f"old=$(systemctl show -P MainPID {UNIT}); pkill -KILL -x conmon; "
            f"while [ \"$(systemctl show -P MainPID {UNIT})\" = \"$old\" ]; do sleep 0.2; done",
            8080,
            f"{UNIT}.service",
        )

    unit_med, bare_med = statistics.median(unit_times), statistics.median(bare_times)
    print(
        f"start-to-healthy, unit:        {unit_med:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in unit_times)})"
    )
    print(
        f"start-to-healthy, bare podman: {bare_med:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in bare_times)})"
    )
    print(f"ratio unit / bare:             {unit_med / bare_med:.2f}  (goal <= 1.10)")
    serving_med = statistics.median(unit_serving)
    print(
        f"  of which the unit's container answers /health 200 after {serving_med:.2f} s "
        f"(ratio {serving_med / bare_med:.2f} to bare); the remaining {unit_med - serving_med:.2f} s is podman's "
        "health check noticing it and sending READY=1"
    )
    print(f"false-ready window:            {max(false_ready):.2f} s  (worst of {RUNS}; goal 0)")
    print(f"crash-to-healthy:              {crash:.2f} s  (podman kill -> /health 200, includes RestartSec)")
    print(f"conmon-kill-to-healthy:        {conmon:.2f} s  (SIGKILL of conmon -> restarted unit active, /health 200)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
