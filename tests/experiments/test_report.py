"""The A/B report leads with the decision (rule: experiments/texts.py; layout: report.py).

The rule is tested on hand-made ab_results rows with known answers; the written report on one
small world (3,000 agents, 30 days); the page width in headless Chromium (``make test``
installs it; a missing browser fails the test, it is not skipped).
"""

import math
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from experiments import run as run_mod
from experiments.cli import compose_config
from experiments.config import register
from experiments.decision import Sense, decide, decision_estimate
from experiments.report import Section, format_frame, number, p_value, percent, write_report
from experiments.stats.analysis import SRMResult
from experiments.texts import ab_panel, metric_table, whatif_table

Z = 1.959964 + 0.841621  # z_(1 - 0.05/2) + z_0.8
SENSE = {"aov": Sense(1, 0.0, None, False), "margin_per_visitor": Sense(1, -0.5, 0.5, True),
         "conversion_rate": Sense(1, 0.0, None, False)}  # fmt: skip
SRM_OK = SRMResult({"control": 3000, "treatment": 3000}, {"control": 0.5, "treatment": 0.5},
                   0.0, 1.0, False, 0.001)  # fmt: skip
SRM_BAD = SRM_OK._replace(counts={"control": 3300, "treatment": 2700}, statistic=60.0,
                          p_value=1e-14, flag=True)  # fmt: skip
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking", "--disable-sync",
                  "--disable-component-update", "--window-size=1280,2000"]  # fmt: skip


def row(metric="aov", lift=10.0, se=4.0, significant=None, role="primary", arm="treatment",
        null=0.0, **more) -> dict:  # fmt: skip
    """One ab_results row: a z test of ``lift`` with standard error ``se`` against ``null``."""
    from scipy import stats

    p = 2 * stats.norm.sf(abs(lift - null) / se)
    half = 1.959964 * se
    control = 100.0
    return {"metric": metric, "arm": arm, "control": control, "treatment": control + lift,
            "abs_lift": lift, "abs_ci_low": lift - half, "abs_ci_high": lift + half,
            "rel_lift": lift / control, "rel_ci_low": (lift - half) / control,
            "rel_ci_high": (lift + half) / control, "p_value": p, "p_adjusted": p,
            "significant": p < 0.05 if significant is None else significant, "role": role,
            "population": "exposed", "method": "z", "adj_ci_low": lift - half,
            "adj_ci_high": lift + half, "cuped_lift": np.nan, "cuped_ci_low": np.nan,
            "cuped_ci_high": np.nan, "cuped_p_value": np.nan, "variance_reduction": np.nan,
            "se": se} | more  # fmt: skip


def table(*rows) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


# --- The rule ------------------------------------------------------------------------------


def test_a_significantly_better_primary_metric_ships():
    (d,) = decide(table(row(lift=10.0, se=4.0)), SRM_OK, SENSE, days=30)  # z = 2.5, p = 0.012
    assert (d.action, d.headline) == ("ship", "Ship")


def test_a_sample_ratio_mismatch_stops_whatever_the_metrics_say():
    (d,) = decide(table(row(lift=10.0, se=4.0)), SRM_BAD, SENSE, days=30)
    assert (d.action, d.headline) == ("stop", "Stop: the split is broken, fix assignment")
    assert "3,300" in d.reason and "p < 0.001" in d.reason


def test_an_inconclusive_test_keeps_running_for_the_days_its_mde_needs():
    # MDE now = Z * se = 11.2; the observed lift 5 needs (11.2 / 5)^2 = 5.02 times the users:
    # 4.02 x 30 days more at the same traffic (6,000 users / 30 days = 200 a day).
    (d,) = decide(table(row(lift=5.0, se=4.0)), SRM_OK, SENSE, days=30)
    expected = 30 * ((Z * 4.0 / 5.0) ** 2 - 1)
    assert d.action == "keep running"
    assert d.more_days == pytest.approx(expected, rel=1e-5)
    assert d.headline == f"Keep running for about {math.ceil(expected)} more days"
    assert "200 users exposed per day" in d.reason and "estimate" in d.reason


def test_the_target_lift_is_given_beside_the_observed_one():
    (d,) = decide(table(row(lift=5.0, se=4.0)), SRM_OK, SENSE, days=30, planned={"aov": 10.0})
    planned = 30 * ((Z * 4.0 / 10.0) ** 2 - 1)
    assert f"For the target's lift (+10): about {planned:,.0f} more days." in d.reason


def test_an_effect_needing_more_than_a_year_is_too_small_to_detect():
    (d,) = decide(table(row(lift=1.0, se=4.0)), SRM_OK, SENSE, days=30)  # 30 x 124 days
    assert d.action == "stop"
    assert d.headline == "Stop: the effect is too small to detect with this traffic"


def test_a_significantly_worse_primary_metric_stops():
    (d,) = decide(table(row(lift=-10.0, se=4.0)), SRM_OK, SENSE, days=30)
    assert (d.action, d.headline) == ("stop", "Stop: treatment harms aov")


def test_a_failing_guardrail_blocks_a_winning_primary_metric():
    # margin 0.5: the interval's better end -2 + 1.96 x 0.5 = -1.02 lies below -0.5: fails
    guard = row("margin_per_visitor", lift=-2.0, se=0.5, significant=False, role="guardrail",
                adj_ci_high=np.inf)  # fmt: skip
    (d,) = decide(table(row(lift=10.0, se=4.0), guard), SRM_OK, SENSE, days=30)
    assert (d.action, d.headline) == ("stop", "Stop: treatment harms margin_per_visitor")


def test_a_guardrail_not_yet_shown_is_named_but_does_not_block_shipping():
    guard = row("margin_per_visitor", lift=-0.3, se=0.5, significant=False, role="guardrail")
    (d,) = decide(table(row(lift=10.0, se=4.0), guard), SRM_OK, SENSE, days=30)
    assert d.action == "ship"
    assert "Not yet shown within their margin: margin_per_visitor" in d.reason


def test_the_decision_reads_the_cuped_estimate_and_its_standard_error():
    r = row(lift=5.0, se=4.0, cuped_lift=6.0, variance_reduction=0.75)
    assert decision_estimate(r) == (6.0, pytest.approx(2.0))  # se x sqrt(1 - 0.75)


# --- Cells ---------------------------------------------------------------------------------


def test_numbers_are_shown_for_people():
    assert p_value(7.742e-11) == "<0.001" and p_value(0.03449) == "0.034"
    assert number(7.742e-11) == "0" and number(1234567.8) == "1,234,568"
    assert number(20.8256, signed=True) == "+20.83" and number(0.05) == "0.05"
    assert percent(0.18756, signed=True) == "+18.76%" and number(np.inf, signed=True) == "+∞"
    frame = pd.DataFrame({"p_value": [7.742e-11, np.nan], "flag": [True, False],
                          "rel_lift": [0.1876, np.nan], "se": [1.5e-9, 2.0]})  # fmt: skip
    text = " ".join(format_frame(frame).to_numpy().ravel())
    assert "<0.001" in text and "yes" in text and "no" in text and "+18.76%" in text
    assert not re.search(r"nan|e-\d|e\+\d|True|False", text)


def test_an_undefined_relative_lift_reads_undefined():
    r = row(lift=2.0, rel_lift=np.nan, rel_ci_low=np.nan, rel_ci_high=np.nan)
    cells = metric_table(table(r), SENSE, 0.05).frame.iloc[0]
    assert cells["relative lift [95% CI]"] == "undefined"
    assert cells["result"] == "no clear difference"


# --- The written report --------------------------------------------------------------------


def outcome_of(*rows, srm=SRM_OK):
    analysis = SimpleNamespace(table=table(*rows), srm=srm, notes=())
    return SimpleNamespace(analysis=analysis, smart=None)


@pytest.mark.parametrize("rows, srm, headline, tone", [
    ([row(lift=10.0, se=4.0)], SRM_OK, "Ship", "good"),
    ([row(lift=10.0, se=4.0)], SRM_BAD, "Stop: the split is broken, fix assignment", "bad"),
    ([row(lift=5.0, se=4.0)], SRM_OK, "Keep running for about 121 more days", "neutral"),
])  # fmt: skip
def test_the_top_panel_says_what_to_do(tmp_path, rows, srm, headline, tone):
    outcome = outcome_of(*rows, srm=srm)
    panel = ab_panel(outcome, outcome.analysis.table, SENSE, 30, 0.05)
    write_report(tmp_path, "A/B", [Section("Decision", "rule", panel=panel)])
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert f'<div class="panel {tone}"><p class="next">{headline}</p>' in page
    assert f"> **{headline}**" in (tmp_path / "report.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """One small A/B run with a target (about 5 s)."""
    register()
    cfg = compose_config("config", [
        "experiment=ab_test", "strategy=[bundles]", "target=aov_10",
        "target.deadline=2027-01-30", "scenario.population.size=3000", "scenario.days=30",
        "progress=false", "output.events=false"])  # fmt: skip
    out = tmp_path_factory.mktemp("ab")
    run_mod.run(cfg, out)
    return out


def visible_text(page: str) -> str:
    """The page without its embedded pictures and style."""
    page = re.sub(r"<img[^>]*>|<style>.*?</style>", "", page, flags=re.S)
    return re.sub(r"<[^>]+>", " ", page)


def test_the_ab_report_opens_with_the_decision_and_shows_no_raw_numbers(small_run):
    page = (small_run / "report.html").read_text(encoding="utf-8")
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings[:3] == ["Decision", "Primary metrics (exposed users)",
                            "Secondary metrics (exposed users)"]  # fmt: skip
    assert re.search(r'class="next">(Ship|Stop: [^<]+|Keep running for about \d+ more days)<',
                     page)  # fmt: skip
    for label in ("Primary metric", "Target", "Sample ratio", "Guardrails"):
        assert f"<dt>{label}</dt>" in page
    assert page.index("<table") > page.index('class="panel')  # tables after the panel
    assert page.index("<img") > page.index("<table")  # figures after the tables
    for text in (visible_text(page), (small_run / "report.md").read_text(encoding="utf-8")):
        assert not re.search(r"\bnan\b|\d[eE][-+]\d|\bTrue\b|\bFalse\b", text)


# --- The page's width, measured by Chromium ------------------------------------------------


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is missing: `make test` installs it (apt-get install chromium)"
    return path


def measured_width(page: Path) -> tuple[int, int, int]:
    """The page's scroll width, its widest table's right edge and the window's width."""
    probe = page.with_name("probe.html")
    script = ("<script>const r=Math.max(0,...[...document.querySelectorAll('table')].map("
              "t=>Math.ceil(t.getBoundingClientRect().right)));document.body.insertAdjacentHTML("
              "'beforeend','<pre id=width>'+document.documentElement.scrollWidth+' '+r+' '+"
              "window.innerWidth+'</pre>')</script>")  # fmt: skip
    probe.write_text(
        page.read_text(encoding="utf-8").replace("</body>", script + "</body>"), encoding="utf-8"
    )
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                              "--dump-dom", probe.as_uri()], capture_output=True, text=True,
                             timeout=60, check=True).stdout  # fmt: skip
    found = re.search(r'<pre id="width">(\d+) (\d+) (\d+)</pre>', dom)
    assert found, dom[-2000:]
    return tuple(map(int, found.groups()))


def wide_report(out: Path) -> Path:
    """A report with the widest tables the A/B pages make, and a 30-column generic one."""
    rows = [row(arm=arm, metric=m, role=role, true_abs_lift=1.0, true_rel_lift=0.01,
                abs_covered=True, variance_reduction=0.2, cuped_lift=1.0, lift=-0.001234567)
            for arm in ("treatment_a", "treatment_b")
            for m, role in (("aov", "primary"), ("margin_per_visitor", "guardrail"),
                            ("conversion_rate", "secondary"))]  # fmt: skip
    wide = pd.DataFrame(np.full((5, 30), -12345.678901), columns=[f"column_{i}" for i in range(30)])
    whatif = pd.DataFrame({"kpi": ["conversion_rate", "revenue"], "without": [0.021, 12345.6],
                           "with": [0.022, 13000.1], "abs_diff": [0.001, 654.5],
                           "rel_diff": [0.05, 0.053], "abs_diff_ci_low": [-0.002, -100.0],
                           "abs_diff_ci_high": [0.004, 1400.0], "rel_diff_ci_low": [-0.1, -0.01],
                           "rel_diff_ci_high": [0.2, 0.11], "replicates": [5, 5]})  # fmt: skip
    sections = [
        Section("metrics", tables=[metric_table(table(*rows), SENSE, 0.05)]),
        Section("itt", tables=[metric_table(table(*rows), SENSE, 0.05, compact=True)]),
        Section("generic", tables=[wide]),
        Section("whatif", tables=[whatif_table(whatif)]),
    ]
    write_report(out, "wide", sections)
    return out / "report.html"


def test_every_table_fits_a_1280_px_page_in_chromium(small_run, tmp_path):
    for page in (small_run / "report.html", wide_report(tmp_path)):
        scroll, right, window = measured_width(page)
        assert window == 1280
        assert scroll <= window and right <= window, (page, scroll, right)
