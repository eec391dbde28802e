"""bench/real_scale.py's bookkeeping: each measurement replaces only its own subsection of BENCHMARKS.md,
separate commands' homes merge into one table, and the similar-papers lists are the exact nearest rows."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def real_scale():  # noqa: ANN201
    path = _ROOT / "bench" / "real_scale.py"
    saved_path = list(sys.path)
    spec = importlib.util.spec_from_file_location("bench_real_scale", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved_path  # the bench scripts arrange the path for themselves
    return module


BEFORE = """# Benchmarks

## Quality among real papers

Opening text, written by hand.

### 19,997 papers

known-item table at 20k

### Recommendations among real papers

old recommendation table

## Map layout method

untouched
"""


def test_a_measurement_replaces_only_its_own_subsection(real_scale, tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(BEFORE)
    real_scale.write_subsections(path, {real_scale.RECOMMEND_HEADING: f"{real_scale.RECOMMEND_HEADING}\n\nnew table\n",
                                        real_scale.SIMILAR_HEADING: f"{real_scale.SIMILAR_HEADING}\n\nagreement\n"})
    text = path.read_text()
    assert "old recommendation table" not in text
    assert text.count(real_scale.RECOMMEND_HEADING) == 1
    for kept in ("Opening text, written by hand.", "known-item table at 20k", "## Map layout method\n\nuntouched"):
        assert kept in text
    # the new subsection takes the old one's place; the added one comes last, before the next section
    assert (text.index("known-item table") < text.index("new table") < text.index("agreement")
            < text.index("## Map layout method"))


def test_homes_measured_by_separate_commands_share_one_table(real_scale, tmp_path: Path) -> None:
    path = tmp_path / "runs.json"
    real_scale.merged_runs(path, {"papers": 99_990, "embedder": "static", "value": 1})
    real_scale.merged_runs(path, {"papers": 19_997, "embedder": "static", "value": 2})
    runs = real_scale.merged_runs(path, {"papers": 99_990, "embedder": "static", "value": 3})
    assert [(r["papers"], r["value"]) for r in runs] == [(19_997, 2), (99_990, 3)]
    assert json.loads(path.read_text()) == runs


def test_nearest_rows_are_the_exact_top_ten_without_the_row_itself(real_scale) -> None:
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(200, 16)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    rows = [0, 17, 199]
    for row, found in zip(rows, real_scale.nearest(matrix, rows), strict=True):
        scores = matrix @ matrix[row]
        scores[row] = -np.inf
        assert found == list(np.argsort(-scores)[:10])
    same = real_scale.nearest(matrix, rows)
    assert real_scale.overlap(same, same)["mean"] == 1.0
