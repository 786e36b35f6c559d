"""The Workflows panel in a real JupyterLab, driven in Chromium: what a user sees and clicks.

The server is the real ``jupyter lab`` of ``conftest.lab`` (the installed server extension
and prebuilt lab extension); the runs are real subprocesses started by the server.
"""

from __future__ import annotations

import os
import re
import socket
import time
from typing import Any

import pytest

from jupyter_workflows.store import ExecutionStore, default_store_path
from tests.store.helpers import TaskPlan, write_run

from .conftest import (
    BIG_RUN_ID,
    BIG_RUN_TASKS,
    SYNTHETIC_RUNS,
    WORKFLOWS,
    Lab,
    publish_screenshot,
    save_screenshot,
)

pytestmark = pytest.mark.slow

RENDER_BUDGET_MS = 1000


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def workflow_row(page: Any, path: str) -> Any:
    return page.locator(f'[data-testid="workflow"][data-path="{path}"]')


def task_row(page: Any, task_id: str) -> Any:
    return page.locator(f'[data-testid="task"][data-task-id="{task_id}"]')


def test_panel_lists_the_workflows_of_the_root(page: Any) -> None:
    paths = page.locator('[data-testid="workflow"]').evaluate_all(
        "rows => rows.map(r => r.dataset.path)"
    )
    assert sorted(paths) == sorted(WORKFLOWS)
    report = workflow_row(page, "nightly/report.workflow.json")
    expect(report.locator(".jp-Workflows-trigger")).to_have_text("cron")
    broken = workflow_row(page, "drafts/broken.workflow.json")
    expect(broken.locator(".jp-Workflows-invalid")).to_contain_text("problem")


def test_run_shows_tasks_reaching_succeeded_live(page: Any, lab: Lab) -> None:
    workflow_row(page, "workflows/definitions/hello.json").get_by_test_id("run").click()
    detail = page.get_by_test_id("execution-detail")
    expect(detail).to_be_visible()
    expect(task_row(page, "greet")).to_have_attribute("data-status", "succeeded")
    expect(task_row(page, "again")).to_have_attribute("data-status", "succeeded")
    expect(detail.locator(".jp-Workflows-detailTitle [data-status]")).to_have_attribute(
        "data-status", "succeeded"
    )
    # The first attempt of `again` failed: the row says it was retried.
    expect(task_row(page, "again").locator(".jp-Workflows-retries")).to_have_text("1 retry")
    execution_id = detail.get_attribute("data-execution-id")
    assert lab.get(f"executions/{execution_id}")["status"] == "succeeded"

    task_row(page, "greet").click()
    expect(page.get_by_test_id("task-log")).to_contain_text("hello-from-lab")
    task_row(page, "again").click()
    expect(page.get_by_test_id("task-log")).to_contain_text("first-try-fails")
    save_screenshot(page, "run-detail.png")

    # Back on the lists, the run is the newest execution, and hello's last status is it.
    page.get_by_test_id("detail-back").click()
    newest = page.locator('[data-testid="execution"]').first
    expect(newest).to_have_attribute("data-execution-id", execution_id or "")
    expect(newest).to_have_attribute("data-status", "succeeded")
    hello = workflow_row(page, "workflows/definitions/hello.json")
    expect(hello.locator('[data-status="succeeded"]')).to_be_visible()

    # Clicking a past execution opens its detail again.
    newest.click()
    expect(page.get_by_test_id("execution-detail")).to_have_attribute(
        "data-execution-id", execution_id or ""
    )
    expect(task_row(page, "again")).to_have_attribute("data-status", "succeeded")


def test_states_update_live_through_the_event_stream(page: Any, lab: Lab) -> None:
    workflow_row(page, "workflows/definitions/gated.json").get_by_test_id("run").click()
    detail = page.get_by_test_id("execution-detail")
    expect(task_row(page, "prepare")).to_have_attribute("data-status", "succeeded")
    expect(task_row(page, "wait")).to_have_attribute("data-status", "running")
    # Followed through the server-sent events (the token in the URL), not by polling.
    expect(detail).to_have_attribute("data-live", "events")
    expect(page.get_by_test_id("task-summary")).to_have_text("2 tasks: 1 succeeded, 1 running")
    task_row(page, "wait").click()
    expect(page.get_by_test_id("task-log")).to_contain_text("waiting")

    (lab.root / "gate-open").touch()
    expect(task_row(page, "wait")).to_have_attribute("data-status", "succeeded")
    expect(page.get_by_test_id("task-log")).to_contain_text("opened")
    expect(detail.locator(".jp-Workflows-detailTitle [data-status]")).to_have_attribute(
        "data-status", "succeeded"
    )
    expect(detail).to_have_attribute("data-live", "ended")


def test_composite_children_are_nested_under_their_parent_while_live(page: Any, lab: Lab) -> None:
    """The children of a parallel task exist only once it runs: their records come from the
    stream with their parent, so they show nested under it before the run ends."""
    workflow_row(page, "workflows/definitions/fanout.json").get_by_test_id("run").click()
    detail = page.get_by_test_id("execution-detail")
    expect(task_row(page, "ready")).to_have_attribute("data-status", "running")
    expect(detail).to_have_attribute("data-live", "events")
    (lab.root / "fan-start").touch()  # the children start now, followed through the stream

    expect(task_row(page, "quick")).to_have_attribute("data-status", "succeeded")
    expect(task_row(page, "gated")).to_have_attribute("data-status", "running")
    order = "rows => rows.map(r => r.dataset.taskId)"
    rows = page.locator('[data-testid="task"]')
    for child in ("quick", "gated"):
        expect(task_row(page, child)).to_have_class(re.compile(r"\bjp-Workflows-child\b"))
        expect(task_row(page, child)).to_have_attribute("data-parent", "fan")
    assert rows.evaluate_all(order) == ["ready", "fan", "quick", "gated", "after"]
    expect(page.get_by_test_id("task-summary")).to_contain_text("2 running")  # fan, gated
    expect(detail).to_have_attribute("data-live", "events")

    (lab.root / "fan-open").touch()
    expect(task_row(page, "after")).to_have_attribute("data-status", "succeeded")
    expect(detail).to_have_attribute("data-live", "ended")
    # The final record from the store nests them the same way.
    expect(task_row(page, "gated")).to_have_attribute("data-parent", "fan")
    assert rows.evaluate_all(order) == ["ready", "fan", "quick", "gated", "after"]


def test_a_running_task_shows_its_progress(page: Any, lab: Lab) -> None:
    workflow_row(page, "workflows/definitions/files.json").get_by_test_id("run").click()
    files = task_row(page, "files")
    # The first file is done, the second waits: step 1 of 2, labelled with the file.
    expect(files.locator(".jp-Workflows-duration")).to_have_text("1/2")
    expect(files.locator(".jp-Workflows-duration")).to_have_attribute("title", "data/a.json")
    expect(files).to_have_attribute("data-status", "running")
    (lab.root / "files-open").touch()
    expect(files).to_have_attribute("data-status", "succeeded")
    expect(files.locator(".jp-Workflows-duration")).not_to_have_text("1/2")


def test_cancel_a_running_run(page: Any, lab: Lab) -> None:
    workflow_row(page, "workflows/definitions/long.json").get_by_test_id("run").click()
    expect(task_row(page, "nap")).to_have_attribute("data-status", "running")
    page.get_by_test_id("cancel").click()
    detail = page.get_by_test_id("execution-detail")
    expect(detail.locator(".jp-Workflows-detailTitle [data-status]")).to_have_attribute(
        "data-status", "cancelled"
    )
    expect(task_row(page, "nap")).to_have_attribute("data-status", "cancelled")
    expect(page.get_by_test_id("cancel")).to_have_count(0)
    expect(page.get_by_test_id("cancelled-by")).to_have_text("lab")
    execution_id = detail.get_attribute("data-execution-id")
    assert lab.get(f"executions/{execution_id}")["status"] == "cancelled"
    assert lab.get(f"executions/{execution_id}")["cancelled_by"] == "lab"


def test_executed_notebook_opens_from_the_detail(page: Any, lab: Any) -> None:
    workflow_row(page, "workflows/definitions/notebook.json").get_by_test_id("run").click()
    expect(task_row(page, "report")).to_have_attribute("data-status", "succeeded", timeout=60_000)
    link = page.get_by_test_id("open-notebook")
    execution_id = page.get_by_test_id("execution-detail").get_attribute("data-execution-id")
    # The executed notebook lives under workflows/.executions/, a hidden folder Jupyter will
    # not open: the server copies it to workflows/outputs/ and that copy opens as a notebook.
    # The link says the path that opens; its tooltip, what it is a copy of.
    opens = f"workflows/outputs/notebook/{execution_id[:8]}/report.ipynb"
    expect(link).to_have_text(opens)
    expect(link).to_have_attribute("title", re.compile(r"a copy of the executed .*tiny\.ipynb"))
    link.click()
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="report.ipynb")
    expect(tab).to_have_count(1, timeout=20_000)
    expect(tab).to_have_attribute("title", re.compile(re.escape(opens)))
    expect(page.locator(".jp-NotebookPanel:visible .jp-Cell").first).to_be_visible()
    copy = lab.root / opens
    assert copy.is_file()
    expect(page.locator(".jp-Dialog")).to_have_count(0)


def test_failing_run_shows_its_error(page: Any) -> None:
    workflow_row(page, "workflows/definitions/failing.json").get_by_test_id("run").click()
    detail = page.get_by_test_id("execution-detail")
    expect(task_row(page, "explode")).to_have_attribute("data-status", "failed")
    expect(detail.locator(".jp-Workflows-detailTitle [data-status]")).to_have_attribute(
        "data-status", "failed"
    )
    expect(page.get_by_test_id("execution-error")).to_contain_text("explode")
    expect(task_row(page, "explode").locator(".jp-Workflows-taskError")).to_contain_text("3")
    task_row(page, "explode").click()
    expect(page.get_by_test_id("task-log")).to_contain_text("disk-on-fire")
    save_screenshot(page, "failed-run.png")


def test_a_run_on_a_cluster_shows_where_each_task_ran(page: Any, lab: Lab) -> None:
    """A run recorded by another process on a Dask cluster (its journal written here as that
    runner writes it): the detail names the cluster, links its dashboard, and shows the worker
    each task ran on; a task that ran here, locally, shows none."""
    w1, w2 = "tcp://10.0.0.7:40123", "tcp://10.0.0.8:40555"
    here = socket.gethostname()
    write_run(
        ExecutionStore(default_store_path(lab.root)),
        "dask-run-1",
        workflow="dask-etl",
        start=time.time() - 3600,
        executor="dask",
        cluster="tcp://10.0.0.5:8786",
        dashboard="http://10.0.0.5:8787/status",
        tasks=[
            # Its first worker was lost; the second attempt ran on another one.
            TaskPlan(
                "extract", attempts=2, placed=[("dask", w1, "node-7"), ("dask", w2, "node-8")]
            ),
            TaskPlan("load", placed=[("dask", w1, "node-7")]),
            TaskPlan("notify", placed=[("local", None, here)]),
        ],
    )
    page.get_by_test_id("refresh").click()
    page.locator('[data-testid="execution"][data-execution-id="dask-run-1"]').click()
    detail = page.get_by_test_id("execution-detail")
    expect(detail).to_have_attribute("data-execution-id", "dask-run-1")
    expect(page.get_by_test_id("cluster")).to_have_text("dask at tcp://10.0.0.5:8786")
    dashboard = page.get_by_test_id("dashboard")
    expect(dashboard).to_have_attribute("href", "http://10.0.0.5:8787/status")
    expect(dashboard).to_have_attribute("target", "_blank")
    extract = task_row(page, "extract").get_by_test_id("task-where")
    expect(extract).to_have_text(w2)  # where its last attempt ran
    expect(extract).to_have_attribute("title", f"ran on {w2} (node-8)")
    retries = task_row(page, "extract").locator(".jp-Workflows-retries")
    expect(retries).to_have_attribute("title", re.compile(f"attempt 1: failed on {w1}"))
    expect(task_row(page, "load").get_by_test_id("task-where")).to_have_text(w1)
    expect(task_row(page, "notify")).to_have_attribute("data-status", "succeeded")
    expect(task_row(page, "notify").get_by_test_id("task-where")).to_have_count(0)
    save_screenshot(page, "cluster-run.png")


def test_invalid_workflow_problems_and_refused_run(page: Any) -> None:
    row = workflow_row(page, "drafts/broken.workflow.json")
    row.get_by_test_id("validate").click()
    expect(row.get_by_test_id("problems")).to_contain_text("missing")

    # The server refuses to run it: the user gets a dialog with the problems.
    row.get_by_test_id("run").click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Cannot run drafts/broken.workflow.json")
    expect(dialog).to_contain_text("missing")
    dialog.locator("button.jp-mod-accept, button.jp-mod-reject").first.click()
    expect(dialog).to_have_count(0)

    workflow_row(page, "workflows/definitions/hello.json").get_by_test_id("validate").click()
    expect(
        workflow_row(page, "workflows/definitions/hello.json").get_by_test_id("valid")
    ).to_be_visible()


def test_clicking_a_workflow_opens_its_file(page: Any) -> None:
    workflow_row(page, "workflows/definitions/hello.json").locator("a.jp-Workflows-name").click()
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="hello.json")
    expect(tab).to_be_visible()


def test_palette_and_file_browser_commands(page: Any) -> None:
    # "Run workflow" is offered on a workflow file in the file browser and runs it.
    page.locator('.lm-TabBar-tab[data-id="filebrowser"]').click()
    listing = page.locator(".jp-DirListing-content")
    listing.locator('.jp-DirListing-item[title^="Name: nightly"]').dblclick()
    # Not on any JSON file: settings.json is no workflow.
    other = listing.locator('.jp-DirListing-item[title^="Name: settings.json"]')
    other.click(button="right")
    expect(page.locator(".lm-Menu").first).to_be_visible()
    run_item = page.locator(".lm-Menu-item", has_text=re.compile(r"^Run workflow$"))
    expect(run_item).to_be_hidden()  # Lumino keeps a hidden item in the menu, not shown
    page.keyboard.press("Escape")
    item = listing.locator('.jp-DirListing-item[title^="Name: report.workflow.json"]')
    item.click(button="right")
    page.locator(".lm-Menu-item", has_text=re.compile(r"^Run workflow$")).click()
    detail = page.get_by_test_id("execution-detail")
    expect(detail).to_be_visible()
    expect(task_row(page, "say")).to_have_attribute("data-status", "succeeded")

    # The palette's "Run workflow..." asks which one, then runs it.
    page.keyboard.press("Control+Shift+C")
    page.locator(".lm-CommandPalette-input").fill("Run workflow...")
    page.keyboard.press("Enter")
    dialog = page.locator(".jp-Dialog")
    dialog.locator("select").select_option("workflows/definitions/hello.json")
    dialog.get_by_role("button", name="Run").click()
    expect(detail.locator(".jp-Workflows-name").first).to_have_text("hello")
    expect(task_row(page, "again")).to_have_attribute("data-status", "succeeded")

    # The palette's "Show workflow executions" brings the lists back.
    page.keyboard.press("Control+Shift+C")
    page.locator(".lm-CommandPalette-input").fill("Show workflow executions")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("execution-list")).to_be_visible()
    expect(page.get_by_test_id("execution-detail")).to_have_count(0)


def test_status_filter(page: Any, lab: Lab) -> None:
    failed = lab.get("executions?status=failed&limit=1")["total"]
    assert failed >= SYNTHETIC_RUNS // 10
    page.locator("select.jp-Workflows-filter").select_option("failed")
    expect(page.get_by_test_id("execution-total")).to_have_text(f"100 of {failed}")
    statuses = page.locator('[data-testid="execution"]').evaluate_all(
        "rows => [...new Set(rows.map(r => r.dataset.status))]"
    )
    assert statuses == ["failed"]
    page.locator("select.jp-Workflows-filter").select_option("")
    expect(page.get_by_test_id("execution-total")).not_to_have_text(f"100 of {failed}")


MEASURE_MORE = """async () => {
  const list = document.querySelector('[data-testid="execution-list"]');
  const before = Number(list.dataset.count);
  const start = performance.now();
  document.querySelector('[data-testid="more-executions"]').click();
  while (Number(list.dataset.count) === before) {
    if (performance.now() - start > 10000) {
      throw new Error(`no more executions after ${before}`);
    }
    await new Promise(resolve => requestAnimationFrame(resolve));
  }
  await new Promise(resolve => requestAnimationFrame(resolve));
  return [Number(list.dataset.count), performance.now() - start];
}"""

MEASURE_OPEN = """async (id) => {
  const row = document.querySelector(`[data-testid="execution"][data-execution-id="${id}"]`);
  const start = performance.now();
  row.click();
  let tasks = null;
  while (!tasks || tasks.dataset.count === undefined) {
    if (performance.now() - start > 10000) {
      throw new Error(`execution ${id} not shown`);
    }
    await new Promise(resolve => requestAnimationFrame(resolve));
    tasks = document.querySelector('[data-testid="task-list"]');
  }
  await new Promise(resolve => requestAnimationFrame(resolve));
  return [Number(tasks.dataset.count), performance.now() - start];
}"""


def test_thousand_executions_page_and_a_200_task_run_opens_fast(page: Any, lab: Lab) -> None:
    total = lab.get("executions?limit=1")["total"]
    assert total >= SYNTHETIC_RUNS
    executions = page.get_by_test_id("execution-list")
    expect(executions).to_have_attribute("data-count", "100")
    expect(page.get_by_test_id("execution-total")).to_have_text(f"100 of {total}")

    timings, count = [], 100
    while count < total:
        count, elapsed = page.evaluate(MEASURE_MORE)
        timings.append(elapsed)
        assert elapsed < RENDER_BUDGET_MS, f"page of executions took {elapsed:.0f} ms"
    expect(page.get_by_test_id("more-executions")).to_be_hidden()
    assert page.locator('[data-testid="execution"]').count() == total
    print(f"pages of 100 executions: max {max(timings):.0f} ms over {len(timings)} pages")

    count, elapsed = page.evaluate(MEASURE_OPEN, BIG_RUN_ID)
    assert count == BIG_RUN_TASKS
    print(f"execution with {count} tasks rendered in {elapsed:.0f} ms")
    assert elapsed < RENDER_BUDGET_MS, f"the {count}-task execution took {elapsed:.0f} ms"
    expect(task_row(page, f"t{BIG_RUN_TASKS - 1}")).to_have_attribute("data-status", "succeeded")
    save_screenshot(page, "big-run.png")


def test_screenshot_of_the_panel(page: Any) -> None:
    """The panel as a user first sees it, wider than the default sidebar (README picture)."""
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    box = handle.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 200)
    page.mouse.down()
    page.mouse.move(box["x"] + 260, box["y"] + 200, steps=5)
    page.mouse.up()
    expect(page.get_by_test_id("execution-list")).to_have_attribute("data-count", "100")
    assert page.locator("#jupyter-workflows-panel").bounding_box()["width"] > 400
    # A workflow opened from the panel fills the main area.
    workflow_row(page, "workflows/definitions/hello.json").locator("a.jp-Workflows-name").click()
    expect(page.locator("#jp-main-dock-panel")).to_contain_text("greets, then greets again")
    path = save_screenshot(page, "panel.png")
    # Refresh the README's copy on request (it is committed; test runs leave it alone).
    if os.environ.get("UPDATE_README_SCREENSHOT") == "1":
        publish_screenshot(path)
