"""WorkflowService without a server: a server root inside a project serves that project."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from jupyter_workflows.server.service import WorkflowService
from jupyter_workflows.store import ExecutionStore, default_store_path

PWD = {"name": "where", "tasks": [{"id": "t", "type": "shell", "command": "pwd"}]}


def test_a_server_started_in_a_sub_folder_runs_and_records_in_the_project(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    definitions = project / "workflows" / "definitions"
    definitions.mkdir(parents=True)
    (definitions / "where.json").write_text(json.dumps(PWD))
    (project / "elsewhere.workflow.json").write_text(json.dumps(PWD))  # not under the root
    service = WorkflowService(project / "workflows")
    assert service.project_root == project.resolve()

    async def scenario() -> tuple[list[str], dict[str, Any]]:
        listed = [w["path"] for w in (await service.workflows())["workflows"]]
        started = await service.submit("definitions/where.json")
        for _ in range(400):
            detail = await service.execution(started["execution_id"])
            if detail["status"] not in ("pending", "running"):
                break
            await asyncio.sleep(0.05)
        await service.shutdown()
        return listed, detail

    listed, detail = asyncio.run(scenario())
    assert listed == ["definitions/where.json"]  # paths relative to the server's root
    assert detail["status"] == "succeeded" and detail["file"] == "definitions/where.json"
    recorded = ExecutionStore(default_store_path(project)).get_execution(detail["id"])
    assert recorded.tasks["t"].result == str(project.resolve())  # ran in the project root
    assert sorted(os.listdir(project / "workflows")) == [".executions", "definitions"]
