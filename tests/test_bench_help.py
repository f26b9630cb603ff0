"""Every benchmark script answers ``--help`` at once: its options are parsed before torch, Lightning or data load."""

from __future__ import annotations

import pytest

from tests.conftest import REPO
from tests.test_predict import HEAVY, imported, run_python

SCRIPTS = sorted(p.name for p in (REPO / "bench").glob("*.py"))


def test_the_bench_folder_has_scripts():
    assert "compare_schedules.py" in SCRIPTS and "csv_accuracy.py" in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_bench_script_help_is_quick_and_imports_no_torch(script, tmp_path):
    result = run_python(["-X", "importtime", str(REPO / "bench" / script), "--help"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("usage:"), result.stdout[:500]
    modules = imported(result.stderr)
    assert not modules & set(HEAVY), f"{script} --help imports {sorted(modules & set(HEAVY))}: parse the options first"
