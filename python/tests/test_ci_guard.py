"""The CI guard (conftest.py): a VM test that skips fails under CI=true, in any test file."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py")
TESTS = '''
import pytest

@pytest.mark.vm
@pytest.mark.skipif(True, reason="no qemu-system-x86_64")
def test_vm_skipped_by_mark(): pass

@pytest.mark.vm
def test_vm_skipped_inside():
    pytest.skip("no mkfs.ext4")

def test_plain_skip():
    pytest.skip("not a VM test")
'''


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makeini("[pytest]\nmarkers =\n    vm: boots a VM\n")
    pytester.makepyfile(test_other_file=TESTS)
    return pytester


def test_vm_skips_fail_under_ci(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    result = suite.runpytest_subprocess("-rA")
    result.assert_outcomes(skipped=1, failed=1, errors=1)
    result.stdout.fnmatch_lines(["*VM test skipped under CI=true*no qemu-system-x86_64*",
                                 "*VM test skipped under CI=true*no mkfs.ext4*"])


def test_vm_skips_stay_skips_off_ci(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    suite.runpytest_subprocess().assert_outcomes(skipped=3)


RERUN_TESTS = '''
import pytest
from tgi_nix.testing.vm import MachineCrashed, MachineError

attempts = {"crashed": 0, "failed": 0, "plain": 0}

@pytest.mark.vm
def test_qemu_died_once():
    attempts["crashed"] += 1
    if attempts["crashed"] == 1:
        raise MachineCrashed("machine: QEMU: exit status 0; Kernel panic - not syncing")

@pytest.mark.vm
def test_check_failed():
    attempts["failed"] += 1
    raise MachineError("a check failed on attempt %d" % attempts["failed"])

def test_not_a_vm_test():
    attempts["plain"] += 1
    raise MachineCrashed("not rerun outside VM tests")
'''


def test_only_a_vm_test_whose_qemu_died_runs_once_more(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makeini("[pytest]\nmarkers =\n    vm: boots a VM\n")
    pytester.makepyfile(test_reruns=RERUN_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*2 failed, 1 passed, 1 rerun*"])
    # the first attempt's reason is printed even though its rerun passed
    result.stdout.fnmatch_lines(["*rerun after QEMU died: test_reruns.py::test_qemu_died_once*",
                                 "*Kernel panic - not syncing*"])
    assert "a check failed on attempt 2" not in result.stdout.str()
