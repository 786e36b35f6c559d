"""The panel says where and lets you steer (issue 19), in a real JupyterLab driven in Chromium:
located validation problems that open the file at their line, an execution list kept live
for runs started elsewhere, a run form, a layout that survives the default sidebar width.

A module of its own: it adds a workflow to the root, which the other module's listing test
must not see (the ``lab`` fixture is per module).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from .conftest import Lab, save_screenshot

pytestmark = pytest.mark.slow

FORM = "workflows/definitions/form.json"
FORM_WORKFLOW = {
    "name": "form-with-a-rather-long-name-that-a-narrow-sidebar-cuts-off",
    "defaults": {"environment": {"REGION": "eu"}},
    "tasks": [
        {"id": "say", "type": "shell", "command": "echo ${params.n} ${env.REGION} ${env.TARGET}"},
    ],
}


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def workflow_row(page: Any, path: str) -> Any:
    return page.locator(f'[data-testid="workflow"][data-path="{path}"]')


@pytest.fixture
def form(page: Any, lab: Lab) -> Any:
    """The form workflow in the root, listed."""
    path = lab.root / FORM
    if not path.exists():
        path.write_text(json.dumps(FORM_WORKFLOW, indent=2))
    page.get_by_test_id("refresh").click()
    expect(workflow_row(page, FORM)).to_have_count(1)
    return workflow_row(page, FORM)


def test_a_live_refresh_keeps_the_pages_the_user_loaded(page: Any, lab: Lab) -> None:
    executions = page.get_by_test_id("execution-list")
    expect(executions).to_have_attribute("data-count", "100")
    page.get_by_test_id("more-executions").click()
    expect(executions).to_have_attribute("data-count", "200")
    done = subprocess.run(
        [sys.executable, "-m", "jupyter_workflows", "run", "workflows/definitions/hello.json",
         "--json"],
        cwd=lab.root, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    execution_id = json.loads(done.stdout)["id"]
    # The event stream brings the new run in at the top, and the second page stays loaded.
    newest = page.locator('[data-testid="execution"]').first
    expect(newest).to_have_attribute("data-execution-id", execution_id, timeout=10_000)
    expect(executions).to_have_attribute("data-count", "200")


def test_validation_problems_say_where_and_open_the_file_at_that_line(page: Any) -> None:
    broken = workflow_row(page, "drafts/broken.workflow.json")
    broken.get_by_test_id("validate").click()
    problem = broken.get_by_test_id("problem").first
    # As the CLI says it: file:line:col, task 'id', field: message
    expect(problem).to_contain_text("drafts/broken.workflow.json:")
    text = problem.inner_text()
    place = text.split(": ", 1)[0]
    file_line_col, task, field = place.split(", ")
    _, line, column = file_line_col.split(":")
    assert line.isdigit() and column.isdigit(), text
    assert task == "task 'a'" and field == "field 'depends_on[0]'", text
    save_screenshot(page, "validation-problems.png")
    problem.click()
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="broken.workflow.json")
    expect(tab).to_have_count(1)
    # In the text editor (not the JSON tree viewer), the cursor on the problem's line: as
    # the status bar says it.
    expect(page.locator(".jp-FileEditor:visible")).to_have_count(1)
    expect(page.get_by_role("button", name=f"Ln {line}, Col {column}")).to_be_visible()
    save_screenshot(page, "validation-problem-opened.png")


def test_the_execution_list_updates_when_a_run_starts_elsewhere(page: Any, lab: Lab) -> None:
    before = page.locator('[data-testid="execution"]').first.get_attribute("data-execution-id")
    done = subprocess.run(
        [sys.executable, "-m", "jupyter_workflows", "run", "workflows/definitions/hello.json",
         "--json"],
        cwd=lab.root, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    execution_id = json.loads(done.stdout)["id"]
    assert execution_id != before
    # No click, no running row to poll for: only the event stream can bring it in.
    newest = page.locator('[data-testid="execution"]').first
    expect(newest).to_have_attribute("data-execution-id", execution_id, timeout=10_000)
    save_screenshot(page, "list-updated-live.png")


def test_run_with_env_values_and_parameters_from_a_prefilled_form(
    page: Any, lab: Lab, form: Any
) -> None:
    form.get_by_test_id("run-with").click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog.get_by_test_id("run-form")).to_be_visible()
    expect(dialog.get_by_test_id("input-env-REGION")).to_have_value("eu")  # its default
    expect(dialog.get_by_test_id("input-env-TARGET")).to_have_value("")
    dialog.get_by_test_id("input-env-TARGET").fill("prod")
    dialog.get_by_test_id("input-params-n").fill("5")
    save_screenshot(page, "run-form.png")
    dialog.locator(".jp-mod-accept").click()
    detail = page.get_by_test_id("execution-detail")
    expect(detail.locator(".jp-Workflows-detailTitle [data-status]")).to_have_attribute(
        "data-status", "succeeded"
    )
    execution_id = detail.get_attribute("data-execution-id")
    record = lab.get(f"executions/{execution_id}")
    [task] = record["tasks"]
    assert task["log_tail"] == ["5 eu prod"]


def test_at_the_default_sidebar_width_nothing_is_cut_off_without_a_tooltip(
    page: Any, form: Any
) -> None:
    panel = page.locator("#jupyter-workflows-panel")
    page.evaluate(
        """() => {
        const panel = document.querySelector('#jupyter-workflows-panel');
        panel.style.width = '280px';
        panel.style.maxWidth = '280px';
        window.dispatchEvent(new Event('resize'));
    }"""
    )
    page.wait_for_function(  # Lumino lays the panel out again on its next frame
        "document.querySelector('#jupyter-workflows-panel').getBoundingClientRect().width <= 281"
    )
    box = panel.bounding_box()
    assert box is not None
    right = box["x"] + box["width"]
    # Measured in one go in the page: the list re-renders as runs start anywhere (its event
    # stream), and a button measured one at a time may be replaced between two calls.
    buttons = page.evaluate(
        """() => [...document.querySelectorAll('[data-testid="workflow"] button')].map(b => {
            const r = b.getBoundingClientRect();
            return {text: b.innerText, right: r.right, shown: r.width > 0};
        })"""
    )
    shown = [b for b in buttons if b["shown"]]
    assert len(shown) >= 2 * len(page.locator('[data-testid="workflow"]').all())
    for button in shown:
        assert button["right"] <= right + 1, (button, box)
    name = form.locator(".jp-Workflows-name")
    title = name.get_attribute("title") or ""
    assert title.splitlines()[0] == FORM_WORKFLOW["name"]  # the whole name, on hover
    # The long name does not fit at 280 px (else this test tests nothing): cut, with its tooltip.
    # Asked of the locator each time, not of one element: a re-render (a run's events arriving)
    # replaces the row, and a detached element never overflows (scrollWidth 0).
    deadline = time.monotonic() + 20
    while not name.evaluate("n => n.scrollWidth > n.clientWidth"):
        assert time.monotonic() < deadline, "the long name is never cut at 280 px"
        page.wait_for_timeout(50)
    for row in page.locator('[data-testid="execution"]').all()[:20]:
        shown = row.locator(".jp-Workflows-name")
        assert shown.get_attribute("title") == shown.inner_text()
    save_screenshot(page, "panel-280px.png")
