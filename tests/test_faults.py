"""Kill every stage (twice each: inside an artifact write, mid-epoch / mid-generation / in a
worker), rerun, and check the result equals an uninterrupted run. The full harness (10 kills per
stage, also at timed moments) is `python tests/fault_harness.py`."""

import pytest
from fault_harness import main

pytestmark = pytest.mark.slow  # kills and reruns stage subprocesses


def test_killed_stages_resume_to_the_uninterrupted_result(tmp_path, capsys):
    rc = main(["--quick", "--work-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "10 kills tried, 10 interrupted a run, 0 failed" in out
