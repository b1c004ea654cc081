# Globals: machine, subtest, spec, TOKEN.
import json


def downloads() -> int:
    return int(json.loads(machine.succeed("curl -fsS http://127.0.0.1:8080/mock/state"))["downloads"])


machine.wait_for_unit("huggingface-tgi-cached.service", timeout=600)

with subtest("cache dir created by tmpfiles with the intended owner and mode"):
    assert machine.succeed("stat -c '%U %G %a' /var/lib/huggingface-tgi/cached").strip() == "root root 750"
    assert machine.succeed("stat -c '%U %G %a' /var/lib/huggingface-tgi").strip() == "root root 755"
    machine.succeed("test -f /var/lib/huggingface-tgi/cached/hub/models--acme--cached-model/.tgi-mock-complete")
    assert downloads() == 1

with subtest("systemctl restart does not download again"):
    machine.succeed("systemctl restart huggingface-tgi-cached.service")
    machine.wait_until_succeeds("curl -fsS http://127.0.0.1:8080/health", timeout=300)
    assert downloads() == 1
    machine.succeed("journalctl -u huggingface-tgi-cached.service --no-pager | grep -c 'found in cache'")

with subtest("a reboot does not download again"):
    machine.shutdown()
    machine.start()
    machine.wait_for_unit("huggingface-tgi-cached.service", timeout=600)
    assert downloads() == 1
