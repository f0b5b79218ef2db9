"""The report's "Whom to call" section (issue 25): rendered from the run folder's
``uplift_evaluation.json``, one line when it is missing or unreadable."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest

from churn.outreach.runs import latest_run, run_dir
from churn.outreach.whom import UPLIFT_EVALUATION_FILE, read_uplift_evaluation
from tests.serve_support import ServeData, serve_data

EVALUATION = {
    "qini_curve": {"share": [0.0, 0.25, 0.5, 0.75, 1.0], "uplift_ranking": [0, 30, 42, 45, 40], "risk_ranking": [0, 8, 20, 31, 40]},
    "qini": 0.183,
    "qini_interval": [0.101, 0.262],
    "risk_qini": 0.021,
    "difference_interval": [0.05, 0.24],
    "ranking": "uplift",
    "ranking_reason": "the uplift ranking's Qini beats the risk ranking's on held-out cohorts (difference 0.05 to 0.24)",
    "policies": [
        {"policy": "risk", "customers_saved": 41.5, "revenue_retained": 52000, "calls": 2600, "cost": 13000},
        {"policy": "uplift", "customers_saved": 77.25, "revenue_retained": 91000, "calls": 2600, "cost": 13000},
    ],
}


@pytest.fixture(scope="module")
def sd(tmp_path_factory, training_data, trained) -> ServeData:  # type: ignore[no-untyped-def]
    return serve_data(tmp_path_factory, training_data, trained)


def test_the_report_shows_whom_to_call_when_the_run_has_an_uplift_evaluation(sd: ServeData, tmp_path: Path) -> None:
    from churn.jobs.weekly import rerender_report

    folder = tmp_path / "scores"
    shutil.copytree(sd.scores_dir, folder, symlinks=True)
    run = run_dir(folder, str(latest_run(folder)["run_id"]))

    page = (run / "report.html").read_text(encoding="utf-8")  # as the scoring run wrote it, without the file
    assert 'id="whom-to-call"' in page and 'id="whom-missing"' in page and "uplift_evaluation.json is not in its folder" in page
    assert 'id="qini-chart"' not in page

    (run / UPLIFT_EVALUATION_FILE).write_text(json.dumps(EVALUATION), encoding="utf-8")
    page = rerender_report(folder).read_text(encoding="utf-8")
    assert 'id="whom-missing"' not in page and '<img id="qini-chart" alt="Qini curve: uplift ranking vs. risk ranking" src="data:image/png;base64,' in page
    assert "ranked by <strong>uplift</strong>: the uplift ranking&#39;s Qini beats" in page
    assert "0.183" in page and "0.101 to 0.262" in page and "0.162" in page and "0.050 to 0.240" in page
    policies = page[page.index('id="policy-table"') : page.index("</table>", page.index('id="policy-table"'))]
    assert re.findall(r"<tr><td>(\w+)</td><td class=\"num\">([\d.,]+)</td>", policies) == [("risk", "41.5"), ("uplift", "77.2")]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "could not be read"),
        (json.dumps([1, 2]), "not a JSON object"),
        (json.dumps({**EVALUATION, "qini_curve": {"share": [0, 1], "uplift_ranking": [0, 1]}}), "qini_curve needs"),
        (json.dumps({**EVALUATION, "qini_curve": {"share": [0, 1], "uplift_ranking": [0], "risk_ranking": [0, 1]}}), "same, non-zero length"),
        (json.dumps({**EVALUATION, "policies": [{"calls": 3}]}), "policies must be"),
    ],
)
def test_a_bad_uplift_evaluation_is_one_line_not_a_broken_report(tmp_path: Path, content: str, problem: str) -> None:
    (tmp_path / UPLIFT_EVALUATION_FILE).write_text(content, encoding="utf-8")
    said = read_uplift_evaluation(tmp_path)
    assert isinstance(said, str) and problem in said and "\n" not in said


def test_missing_figures_in_the_evaluation_show_as_dashes() -> None:
    from churn.outreach.report import _png
    from churn.outreach.whom import whom_to_call_view

    view = whom_to_call_view({**EVALUATION, "qini": None, "qini_interval": None, "policies": [{"policy": "risk", "cost": math.nan}]}, _png)
    assert view["qini"] == "–" and view["qini_interval"] is None and view["policies"][0]["cost"] == "–"  # type: ignore[index]
