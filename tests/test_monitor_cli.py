"""WorkflowMonitor's health report and the `workflow monitor` command, over real runs."""

from __future__ import annotations

import json
import re
import struct
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from jupyter_workflows.cli.monitor import monitor
from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.monitor import WorkflowMonitor
from tests.conftest import cli
from tests.store.test_frames import SLOWER, History, make_history


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> History:
    return make_history(tmp_path_factory.mktemp("monitor") / "project")


def _quantile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (DuckDB's quantile_cont, numpy's default)."""
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def test_health_report_overall_matches_the_runs(recorded):
    report = WorkflowMonitor(recorded.store).health_report()
    overall = report["overall"]
    assert (overall["runs"], overall["succeeded"], overall["failed"]) == (8, 7, 1)
    assert overall["success_rate"] == pytest.approx(7 / 8)
    ms = [e.duration * 1000 for e in recorded.executions]
    assert overall["avg_ms"] == pytest.approx(sum(ms) / len(ms), abs=0.01)
    assert overall["p50_ms"] == pytest.approx(_quantile(ms, 0.5), abs=0.01)
    assert overall["p95_ms"] == pytest.approx(_quantile(ms, 0.95), abs=0.01)


def test_health_report_per_workflow_and_per_task(recorded):
    report = WorkflowMonitor(project_root=recorded.root).health_report()
    workflows = {w["workflow"]: w for w in report["workflows"]}
    assert set(workflows) == {"steady", "slower", "flaky"}
    flaky = workflows["flaky"]
    assert (flaky["runs"], flaky["succeeded"], flaky["failed"]) == (3, 2, 1)
    assert flaky["last_status"] == "succeeded"
    last = recorded.of("flaky")[-1]
    assert flaky["last_started_at"].timestamp() == pytest.approx(last.started_at, abs=1e-6)
    assert flaky["last_started_at"].tzinfo is not None
    slower = [e.duration * 1000 for e in recorded.of("slower")]
    assert workflows["slower"]["p95_ms"] == pytest.approx(_quantile(slower, 0.95), abs=0.01)
    tasks = {(t["workflow"], t["task_id"]): t for t in report["tasks"]}
    assert tasks[("flaky", "fetch")]["retries"] == 1
    assert tasks[("flaky", "check")]["failures"] == 1
    assert tasks[("flaky", "publish")]["runs"] == 2  # skipped once: not a run
    assert tasks[("steady", "unit")]["runs"] == 2


def test_health_report_narrowed_to_a_workflow_and_a_period(recorded):
    monitor_ = WorkflowMonitor(recorded.store)
    one = monitor_.health_report(workflow="slower")
    assert one["overall"]["runs"] == 3
    assert [w["workflow"] for w in one["workflows"]] == ["slower"]
    assert {t["task_id"] for t in one["tasks"]} == {"work"}
    # A millisecond early: a float start time and its microsecond timestamp may round apart.
    since = datetime.fromtimestamp(recorded.of("flaky")[0].started_at - 0.001, tz=timezone.utc)
    recent = monitor_.health_report(since=since)
    assert recent["overall"]["runs"] == 3 and recent["overall"]["failed"] == 1
    nothing = monitor_.health_report(since=datetime.now(timezone.utc) + timedelta(hours=1))
    assert nothing["overall"]["runs"] == 0 and nothing["overall"]["success_rate"] is None
    assert nothing["workflows"] == [] and nothing["tasks"] == []


def test_the_report_reads_the_store_each_time_and_record_execution_saves(tmp_path):
    root = tmp_path / "project"
    watcher = WorkflowMonitor(project_root=root)
    assert watcher.health_report()["overall"]["runs"] == 0
    WorkflowOrchestrator(root).execute(SLOWER, env={"SLEEP": "0"})
    assert watcher.health_report()["overall"]["runs"] == 1  # another writer's run, no counter
    unrecorded = WorkflowOrchestrator(root, record=False).execute(SLOWER, env={"SLEEP": "0"})
    assert watcher.health_report()["overall"]["runs"] == 1
    watcher.record_execution(unrecorded)
    report = watcher.health_report()
    assert report["overall"]["runs"] == 2 and report["overall"]["succeeded"] == 2
    assert watcher.store.get_execution(unrecorded.id).tasks["work"].status == "succeeded"


# -- the command ------------------------------------------------------------------------------


def _invoke(root, *args: str):
    return CliRunner().invoke(monitor, list(args), obj=root, catch_exceptions=False)


def test_monitor_prints_the_report_as_tables(recorded):
    result = _invoke(recorded.root)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "8 run(s): 7 succeeded, 1 failed, success rate 88%" in out
    rows = [re.split(r"\s{2,}", line.strip()) for line in out.splitlines()]
    assert ["flaky", "3", "2", "1", "67%"] in [row[:5] for row in rows]  # workflows table
    assert ["flaky", "fetch", "3", "0", "1"] in [row[:5] for row in rows], out  # a retry


def test_monitor_json_is_the_health_report(recorded):
    result = _invoke(recorded.root, "--json", "--workflow", "flaky", "--since", "7d")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["overall"]["runs"] == 3 and data["overall"]["failed"] == 1
    started = datetime.fromisoformat(data["workflows"][0]["last_started_at"])
    assert started.timestamp() == pytest.approx(recorded.of("flaky")[-1].started_at, abs=1e-6)
    assert [t["task_id"] for t in data["tasks"]] == ["check", "fetch", "publish"]


def test_monitor_with_nothing_recorded_says_so(tmp_path):
    result = _invoke(tmp_path)
    assert result.exit_code == 0 and result.output.strip() == "no runs recorded yet"
    result = _invoke(tmp_path, "--chart", str(tmp_path / "c.png"))
    assert result.exit_code == 1
    assert "no runs recorded yet: no chart written" in result.output
    assert not (tmp_path / "c.png").exists()


def test_monitor_since_with_no_runs_in_the_period(recorded):
    result = _invoke(recorded.root, "--since", "2999-01-01", "--workflow", "flaky")
    assert result.exit_code == 0
    assert result.output.startswith("no runs of 'flaky' since 2999-01-01")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "7"], "'7' needs a unit, such as 7d, 12h or 30m"),
        (["--since", "last week"], "neither a duration"),
        (["--chart", "report.gif"], "must end in .png, .svg or .html"),
        (["--chart", "missing/dir/report.png"], "directory 'missing/dir' does not exist"),
    ],
)
def test_monitor_bad_options_exit_2_with_the_reason(recorded, args, message):
    result = CliRunner().invoke(monitor, args, obj=recorded.root)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_monitor_chart_writes_a_png_of_the_three_charts(recorded, tmp_path):
    target = tmp_path / "health.png"
    result = _invoke(recorded.root, "--chart", str(target))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"wrote {target}"
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 400 and height > 1000  # three charts stacked, drawn at twice their size
    assert len(data) > 30_000


def test_monitor_chart_svg_and_html_for_one_workflow(recorded, tmp_path):
    svg, page = tmp_path / "h.svg", tmp_path / "h.html"
    assert _invoke(recorded.root, "--chart", str(svg), "--workflow", "slower").exit_code == 0
    text = svg.read_text()
    assert text.lstrip().startswith("<svg") and "slower" in text and "flaky" not in text
    assert _invoke(recorded.root, "--chart", str(page)).exit_code == 0
    html = page.read_text()
    assert "vegaEmbed" in html and "<script src=" not in html


def test_live_view_shows_a_run_in_progress_with_its_tasks(tmp_path):
    import subprocess
    import sys
    import time

    from tests.conftest import write_workflow

    slow = {"name": "slowpoke", "tasks": [
        {"id": "first", "type": "shell", "command": "echo done"},
        {"id": "waits", "type": "shell", "command": "sleep 30", "depends_on": ["first"]},
        {"id": "after", "type": "shell", "command": "true", "depends_on": ["waits"]},
    ]}  # fmt: skip
    write_workflow(tmp_path, slow)
    runner = subprocess.Popen(
        [sys.executable, "-m", "jupyter_workflows", "run", "wf.json"], cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            result = cli(tmp_path, "monitor", "--live", "--frames", "1", env={"COLUMNS": "160"})
            assert result.returncode == 0, result.stderr
            if "waits" in result.stdout:
                break
            time.sleep(0.2)
        screen = result.stdout
        assert "1 running" in screen
        running = screen[screen.index("running") : screen.index("recent runs")]
        assert "slowpoke" in running and "1/3 tasks" in running
        assert "waits" in running and "▶ running" in running
        assert "first" in running and "succeeded" in running
        assert "after" not in running  # pending tasks are left out
    finally:
        runner.terminate()
        runner.wait(10)
    # The runner recorded its cancellation; the next frame lists it among the recent runs.
    screen = cli(tmp_path, "monitor", "--live", "--frames", "1", env={"COLUMNS": "160"}).stdout
    assert "0 running" in screen and "nothing is running" in screen
    recent = screen[screen.index("recent runs") :]
    assert "slowpoke" in recent and "cancelled" in recent


def test_live_cannot_be_combined_with_json(recorded):
    result = CliRunner().invoke(monitor, ["--live", "--json"], obj=recorded.root)
    assert result.exit_code == 2 and "--live cannot be combined" in result.output
