"""pytest hooks for every test under tests/; the helpers live in mzftest.py."""

from __future__ import annotations

import pytest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Exit status 5 means "no tests collected" (for instance `-k` matching nothing); it is
    # not a failure of the code under test and must not fail `make check`.
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK
