"""Altair charts over a real history; each rendered to PNG offline with vl-convert."""

from __future__ import annotations

import copy
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import altair as alt
import pytest

from jupyter_workflows.monitor import charts
from jupyter_workflows.store.frames import history, sql
from tests.store.test_frames import SLEEPS, History, make_history


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> History:
    return make_history(tmp_path_factory.mktemp("charts") / "project")


def _values(chart: alt.TopLevelMixin) -> list[dict]:
    """The rows a chart draws (every chart here carries its data inline)."""
    spec = chart.to_dict()
    return spec["datasets"][spec["data"]["name"]]


def test_durations_follow_each_workflow_over_time(recorded):
    chart = charts.durations(project_root=recorded.root)
    assert isinstance(chart, alt.LayerChart)
    rows = _values(chart)
    assert len(rows) == 8
    slower = [r for r in rows if r["workflow"] == "slower"]
    slower.sort(key=lambda r: r["started_at"])
    assert [r["seconds"] for r in slower] == sorted(r["seconds"] for r in slower)
    assert slower[-1]["seconds"] >= SLEEPS[-1]
    assert {r["status"] for r in rows if r["workflow"] == "flaky"} == {"succeeded", "failed"}
    assert all(r["started_at"].endswith("+00:00") for r in rows)
    spec = chart.to_dict()
    encodings = [layer["encoding"] for layer in spec["layer"]]
    assert {e["x"]["field"] for e in encodings} == {"started_at"}
    assert {e["color"]["field"] for e in encodings} == {"workflow"}


def test_durations_filter_and_accept_a_dataframe(recorded):
    only = _values(charts.durations(workflow="slower", project_root=recorded.root))
    assert {r["workflow"] for r in only} == {"slower"} and len(only) == 3
    frame = history(limit=None, project_root=recorded.root)
    from_frame = _values(charts.durations(frame, workflow="slower"))
    assert sorted(r["id"] for r in from_frame) == sorted(r["id"] for r in only)
    assert _values(charts.durations(frame, since="1h")) == _values(charts.durations(frame))


def test_success_rate_per_workflow_over_finished_runs(recorded):
    chart = charts.success_rate(project_root=recorded.root)
    rows = {r["workflow"]: r for r in _values(chart)}
    assert rows["flaky"]["success_rate"] == pytest.approx(2 / 3)
    assert rows["flaky"]["label"] == "2/3 (67%)"
    assert rows["steady"]["success_rate"] == rows["slower"]["success_rate"] == 1.0
    assert chart.to_dict()["layer"][0]["encoding"]["x"]["scale"]["domain"] == [0, 1]


def test_task_durations_is_a_box_plot_per_task(recorded):
    chart = charts.task_durations(project_root=recorded.root)
    assert chart.to_dict()["mark"]["type"] == "boxplot"
    rows = _values(chart)
    work = sorted(r["seconds"] for r in rows if r["task"] == "slower: work")
    assert len(work) == 3 and work[-1] >= SLEEPS[-1]
    # skipped tasks (flaky's publish after the failed check) have no duration: not drawn
    assert len([r for r in rows if r["task"] == "flaky: publish"]) == 2
    one = _values(charts.task_durations(workflow="steady", project_root=recorded.root))
    assert {r["task"] for r in one} == {"prepare", "checks", "unit", "lint", "report"}


def test_task_durations_from_a_task_runs_query(recorded):
    frame = sql(
        "SELECT e.workflow, t.task_id, t.duration_ms FROM task_runs t "
        "JOIN executions e ON e.id = t.execution_id",
        project_root=recorded.root,
    )
    rows = _values(charts.task_durations(frame, workflow="flaky"))
    assert {r["task"] for r in rows} == {"fetch", "check", "publish"}
    assert len(rows) == 8  # 3 + 3 + 2: the skipped publish has no duration


def test_gantt_shows_children_under_their_parent_coloured_by_status(recorded):
    steady = recorded.of("steady")[0]
    chart = charts.gantt(steady.id[:10], project_root=recorded.root)
    spec = chart.to_dict()
    assert spec["encoding"]["y"]["sort"] == ["prepare", "checks", "· unit", "· lint", "report"]
    rows = {r["task"]: r for r in _values(chart)}
    unit, group = rows["· unit"], rows["checks"]
    assert group["start"] <= unit["start"] and unit["end"] <= group["end"] + 1e-3
    assert unit["seconds"] >= 0.05
    assert rows["prepare"]["start"] == 0 and rows["report"]["start"] >= group["end"] - 1e-3
    color = spec["encoding"]["color"]
    assert color["field"] == "status"
    assert color["scale"] == {"domain": ["succeeded"], "range": [charts.STATUS_COLORS["succeeded"]]}


def test_gantt_of_a_failed_run_keeps_the_skipped_task_row(recorded):
    failed = recorded.of("flaky")[1]
    chart = charts.gantt(failed)  # an Execution works as well as an id
    spec = chart.to_dict()
    assert spec["encoding"]["y"]["sort"] == ["fetch", "check", "publish (skipped)"]
    statuses = {r["task"]: r["status"] for r in _values(chart)}
    assert statuses == {"fetch": "succeeded", "check": "failed"}
    assert spec["encoding"]["color"]["scale"]["range"] == [
        charts.STATUS_COLORS["succeeded"],
        charts.STATUS_COLORS["failed"],
    ]


def test_gantt_of_an_old_run_is_drawn_to_its_own_time_scale(recorded):
    old = copy.deepcopy(recorded.of("flaky")[1])  # its publish task was skipped: no start
    for task in old.tasks.values():
        task.started_at = None if task.started_at is None else task.started_at - 86400
        task.ended_at = None if task.ended_at is None else task.ended_at - 86400
    rows = _values(charts.gantt(old))
    fetch, check = old.task("fetch"), old.task("check")
    assert max(r["end"] for r in rows) == pytest.approx(check.ended_at - fetch.started_at, abs=1e-4)


def test_gantt_from_task_runs_rows(recorded):
    failed = recorded.of("flaky")[1]
    frame = sql("SELECT * FROM task_runs", project_root=recorded.root)
    rows = {r["task"]: r for r in _values(charts.gantt(failed.id, frame))}
    assert set(rows) == {"fetch", "check"}
    assert rows["check"]["seconds"] == pytest.approx(failed.task("check").duration, abs=1e-3)
    with pytest.raises(ValueError, match="no task rows of execution nope"):
        charts.gantt("nope", frame)


def test_nothing_to_chart_is_a_clear_error(tmp_path, recorded):
    empty = tmp_path / "empty"
    with pytest.raises(ValueError, match="no finished runs to chart"):
        charts.durations(project_root=empty)
    with pytest.raises(ValueError, match="no finished runs of workflow 'nope'"):
        charts.success_rate(workflow="nope", project_root=recorded.root)
    with pytest.raises(ValueError, match="no ended tasks"):
        charts.task_durations(project_root=empty)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


CHARTS = ["durations", "success_rate", "task_durations", "gantt", "overview"]


def _chart(name: str, recorded: History) -> alt.TopLevelMixin:
    if name == "gantt":
        return charts.gantt(recorded.of("steady")[0].id, store_or_df=recorded.store)
    return getattr(charts, name)(recorded.store)


@pytest.mark.parametrize("name", CHARTS)
def test_each_chart_renders_to_a_real_png(name, recorded, tmp_path):
    path = charts.save_chart(_chart(name, recorded), tmp_path / f"{name}.png")
    data = path.read_bytes()
    width, height = _png_size(data)
    assert 400 <= width <= 4000 and 100 <= height <= 4000, (width, height)
    assert len(data) > 10_000  # drawn, not a blank canvas


def _offline() -> list[str]:
    """A prefix that runs a command without any network, when this machine allows it."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    pytest.skip("unshare -n is not permitted here: cannot cut the network off")


def test_charts_render_with_no_network_at_all(recorded, tmp_path):
    code = (
        "import sys; from jupyter_workflows import charts; "
        "c = charts.overview(project_root=sys.argv[1]); "
        "[charts.save_chart(c, sys.argv[2] + s) for s in ('.png', '.svg', '.html')]"
    )
    out = tmp_path / "overview"
    subprocess.run([*_offline(), sys.executable, "-c", code, str(recorded.root), str(out)],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    _png_size(Path(f"{out}.png").read_bytes())
    assert Path(f"{out}.svg").read_text().lstrip().startswith("<svg")
    page = Path(f"{out}.html").read_text()
    assert "vegaEmbed" in page and "<script src=" not in page  # scripts inlined


def test_save_chart_refuses_unknown_formats(recorded, tmp_path):
    with pytest.raises(ValueError, match=r"use a \.png, \.svg or \.html file name"):
        charts.save_chart(charts.durations(recorded.store), tmp_path / "x.gif")
    assert not (tmp_path / "x.gif").exists()


def test_importing_charts_does_not_import_altair():
    code = "import sys, jupyter_workflows.monitor.charts; print('altair' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
