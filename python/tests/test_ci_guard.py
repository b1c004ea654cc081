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
