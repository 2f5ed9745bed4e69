"""The suite's open-files checks (tests/conftest.py) fail tests and modules that leave files
open, and let a marked test keep one.
"""

from __future__ import annotations

from pathlib import Path

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py")


def test_files_left_open_fail_their_test_and_module(pytester):
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makeini("[pytest]\nmarkers =\n    leaves_files_open: kept open on purpose\n")
    pytester.makepyfile(
        test_leaky='''
        import pytest

        KEPT = []

        def test_closes(tmp_path):
            with open(tmp_path / "a.bin", "wb") as fh:
                fh.write(b"1")

        def test_leaves_one_open(tmp_path):
            KEPT.append(open(tmp_path / "b.bin", "wb"))

        @pytest.mark.leaves_files_open
        def test_keeps_one_on_purpose(tmp_path):
            """Emulates a file held open by another program."""
            KEPT.append(open(tmp_path / "c.bin", "wb"))

        def test_last():
            pass
    '''
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:warnings", "-rE")
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines(
        [
            "ERROR test_leaky.py::test_leaves_one_open - Failed: 1 file(s) left*",
            "ERROR test_leaky.py::test_last - Failed: 2 file(s) left*",
        ]
    )
