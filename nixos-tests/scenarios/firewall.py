# Globals: machine, subtest, spec, TOKEN.
# Another host: a client in its own network namespace, linked to the machine by a veth pair, so its
# traffic crosses the machine's firewall (loopback traffic never does). Same commands on both drivers.
import json

HOST, CLIENT = "192.168.77.1", "192.168.77.2"
machine.succeed(
    "ip netns add client",
    "ip link add tgi-fw0 type veth peer name tgi-fw1",
    "ip link set tgi-fw1 netns client",
    f"ip addr add {HOST}/24 dev tgi-fw0",
    "ip link set tgi-fw0 up",
    f"ip -n client addr add {CLIENT}/24 dev tgi-fw1",
    "ip -n client link set tgi-fw1 up",
    "ip -n client link set lo up",
    # A server has a default route; pasta (rootless) takes its interface and routes as the container's
    # when the container starts. With no routable interface at all (this VM has no network card) pasta
    # serves loopback only, which the first rootless run of this scenario ran into.
    f"ip route replace default via {CLIENT} dev tgi-fw0",
)
rootless = sorted(f"huggingface-tgi-{name}.service" for name, inst in spec.items() if not inst.get("rootful"))
for name in spec:
    machine.wait_for_unit(f"huggingface-tgi-{name}.service", timeout=600)
# They started before the machine had a route: start them again, as a boot with the network up would.
machine.succeed("systemctl restart " + " ".join(rootless), timeout=600)


def from_client(port: int, path: str = "/health") -> str:
    return f"ip netns exec client curl -fsS --max-time 5 http://{HOST}:{port}{path}"


with subtest("the port of the (rootless) instance with openFirewall answers the other host"):
    assert not spec["public"].get("rootful")
    machine.wait_until_succeeds(from_client(spec["public"]["port"]), timeout=60)
    info = json.loads(machine.succeed(from_client(spec["public"]["port"], "/info")))
    assert info["model_id"] == spec["public"]["model"], info

# The client reached the machine above, so a silence below is the firewall's doing.
with subtest("a rootless instance's port that is not opened does not answer the other host"):
    port = spec["shut"]["port"]
    machine.succeed(f"curl -fsS --max-time 5 http://127.0.0.1:{port}/health")  # it serves, on loopback
    # pasta holds the port on the host: the input firewall sees the connection and drops it.
    machine.succeed(f"ss -ltnpH 'sport = :{port}' | grep -c pasta")
    machine.fail(from_client(port))

with subtest("a rootful instance is reached through podman's port forwarding, which the firewall does not filter"):
    # netavark forwards the published port with DNAT before the input hook, so the packets are
    # forwarded, not delivered: an input firewall never sees them (NixOS's forward filter, when
    # enabled, accepts `ct status dnat` too). So listenAddress, not openFirewall, decides who reaches
    # a rootful instance; this records it.
    machine.wait_until_succeeds(from_client(spec["private"]["port"]), timeout=60)
