"""Run progress as the terminal shows it: plain lines in pipes, a live table on a terminal."""

from __future__ import annotations

import io

from rich.console import Console

from jupyter_workflows.cli.render import LiveRenderer
from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.ui.text import PlainRenderer
from tests.conftest import make_workflow


def _workflow():
    return make_workflow(
        {"id": "fetch", "type": "shell", "command": "echo fetched", "live_output": True},
        {"id": "quiet", "type": "shell", "command": "echo hidden", "depends_on": ["fetch"]},
        {"id": "broken", "type": "shell", "command": "echo reason >&2; exit 2"},
    )


def test_plain_renderer_prints_one_line_per_event_and_a_summary(project):
    out = io.StringIO()
    renderer = PlainRenderer(out)
    execution = WorkflowOrchestrator(project, sinks=[renderer]).execute(_workflow())
    renderer.close(execution)
    text = out.getvalue()
    assert "fetch | fetched" in text  # live_output streams
    assert "hidden" not in text.split("--- last output")[0]  # others do not
    assert "✗ broken failed" in text and "exited with code 2: reason" in text
    assert "--- last output of broken ---" in text
    assert "workflow 'test' failed" in text and execution.id in text


def test_live_renderer_draws_the_task_table_on_a_terminal(project):
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120, color_system=None)
    renderer = LiveRenderer(console)
    execution = WorkflowOrchestrator(project, sinks=[renderer]).execute(_workflow())
    renderer.close(execution)
    text = buffer.getvalue()
    assert "fetch | fetched" in text
    for task_id, state in (("fetch", "succeeded"), ("quiet", "succeeded"), ("broken", "failed")):
        assert any(task_id in line and state in line for line in text.splitlines()), task_id
    assert "workflow 'test' failed" in text


def test_children_are_listed_under_their_parent():
    from jupyter_workflows.execution.records import TaskRecord
    from jupyter_workflows.ui.text import as_tree

    tasks = [
        TaskRecord(id="a"),
        TaskRecord(id="loop[0]", parent="loop"),
        TaskRecord(id="loop"),
        TaskRecord(id="loop[0].then", parent="loop[0]"),
        TaskRecord(id="orphan", parent="gone"),
    ]
    assert [(d, t.id) for d, t in as_tree(tasks)] == [
        (0, "a"),
        (0, "loop"),
        (1, "loop[0]"),
        (2, "loop[0].then"),
        (0, "orphan"),
    ]
