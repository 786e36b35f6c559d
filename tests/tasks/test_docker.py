"""docker tasks against a real Docker engine: builds, runs, logs, exit codes, clean-up.

The engine is a private dockerd started for the session (tests/dockerd.py): no bridge network,
images built FROM scratch with a static busybox, nothing pulled from a registry. Without
dockerd these tests skip, except under CI=true where they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_workflows.definition.templates import Scope
from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.execution.events import OutputLine, TaskEnded
from jupyter_workflows.execution.states import State
from jupyter_workflows.tasks.docker import runner as docker_task
from jupyter_workflows.tasks.docker.runner import command_argv
from tests import dockerd
from tests.conftest import make_workflow

LABEL = "jupyter-workflows.execution"


@pytest.fixture(scope="session")
def engine() -> Iterator[dockerd.Engine]:
    with dockerd.engine_for_tests() as running:
        print(f"\ndockerd ready in {running.started_in:.2f} s at {running.host}")
        yield running


@pytest.fixture(scope="session")
def busybox(engine) -> str:
    """A local image with busybox's applets in /bin (built once; never pulled)."""
    started = time.monotonic()
    tag = dockerd.busybox_image(engine.host)
    print(f"\nbusybox image ready in {time.monotonic() - started:.2f} s")
    return tag


@pytest.fixture
def host(engine) -> dict[str, str]:
    """The env= for run_workflow that points tasks at the test engine."""
    return {"DOCKER_HOST": engine.host}


def _client(engine: dockerd.Engine) -> Any:
    import docker

    return docker.DockerClient(base_url=engine.host, version="auto")


def _run(image: str, command: Any = None, task_id: str = "r", **fields: Any) -> dict[str, Any]:
    task = {"id": task_id, "type": "docker", "image": image, **fields}
    if command is not None:
        task["command"] = command
    return task


def _leftovers(engine: dockerd.Engine, execution_id: str) -> list[str]:
    return dockerd.containers_labelled(engine.host, f"{LABEL}={execution_id}")


def _write_busybox_project(project: Path, extra: str = "") -> None:
    shutil.copy2(dockerd.BUSYBOX, project / "busybox")
    (project / "Dockerfile").write_text(dockerd.BUSYBOX_DOCKERFILE + extra)


# ------------------------------------------------------------------------------- build


def test_build_from_scratch_with_templated_tags_and_a_streamed_log(
    engine, host, project, run_workflow
):
    _write_busybox_project(project)
    repo = f"jw-test-app-{uuid.uuid4().hex[:8]}"
    task = {
        "id": "build",
        "type": "docker",
        "dockerfile": "Dockerfile",
        "context": ".",
        "tags": [f"{repo}:latest", f"{repo}:${{env.BUILD_NUMBER}}"],
    }
    events: list[Any] = []
    started = time.monotonic()
    execution = run_workflow(
        make_workflow(task), env={**host, "BUILD_NUMBER": "42"}, sinks=[events.append]
    )
    print(f"\ndocker task build FROM scratch + busybox: {time.monotonic() - started:.2f} s")
    build = execution.tasks["build"]
    assert build.status is State.SUCCEEDED, build.error
    client = _client(engine)
    latest, numbered = client.images.get(f"{repo}:latest"), client.images.get(f"{repo}:42")
    assert latest.id == numbered.id == build.result["image_id"] == build.outputs["image_id"]
    assert build.result["tags"] == [f"{repo}:latest", f"{repo}:42"]
    assert build.outputs["image"] == f"{repo}:latest"
    lines = [e.line for e in events if isinstance(e, OutputLine)]
    assert "Step 1/4 : FROM scratch" in lines and f"Successfully tagged {repo}:42" in lines
    assert f"Successfully tagged {repo}:42" in build.log_tail


def test_build_args_reach_the_build_and_the_built_image_runs(busybox, host, project, run_workflow):
    (project / "Dockerfile").write_text(
        f'FROM {busybox}\nARG GREETING=unset\nRUN echo "$GREETING" > /greeting.txt\n'
    )
    repo = f"jw-test-args-{uuid.uuid4().hex[:8]}"
    task = {
        "id": "b",
        "type": "docker",
        "context": ".",
        "tags": [f"{repo}:1"],
        "build_args": {"GREETING": "hello ${env.WHO}"},
        "command": ["cat", "/greeting.txt"],
    }
    execution = run_workflow(make_workflow(task), env={**host, "WHO": "from CI"})
    b = execution.tasks["b"]
    assert b.status is State.SUCCEEDED, b.error
    assert b.result == "hello from CI" and b.exit_code == 0
    assert b.outputs["image"] == f"{repo}:1"  # ran the image it built


def test_build_log_streams_while_the_build_runs_and_stderr_is_marked(
    busybox, host, project, run_workflow
):
    (project / "Dockerfile").write_text(
        f"FROM {busybox}\nRUN echo early-line; echo to-stderr >&2; sleep 1; echo late-line\n"
    )
    events: list[Any] = []
    execution = run_workflow(
        make_workflow({"id": "b", "type": "docker", "context": "."}),
        env=host,
        sinks=[events.append],
    )
    assert execution.tasks["b"].status is State.SUCCEEDED, execution.tasks["b"].error
    lines = {e.line: e for e in events if isinstance(e, OutputLine)}
    assert lines["early-line"].stream == "stdout" and lines["to-stderr"].stream == "stderr"
    assert lines["late-line"].stream == "stdout"
    assert lines["late-line"].at - lines["early-line"].at > 0.8  # as it happened, not at the end


def test_a_failing_build_step_fails_with_the_engine_message(
    engine, busybox, host, project, run_workflow
):
    (project / "Dockerfile").write_text(f"FROM {busybox}\nRUN echo step-broke >&2; exit 3\n")
    execution = run_workflow(make_workflow({"id": "b", "type": "docker", "context": "."}), env=host)
    b = execution.tasks["b"]
    assert b.status is State.FAILED and b.exit_code == 3
    assert "docker build failed" in b.error and "returned a non-zero code: 3" in b.error
    assert "step-broke" in b.log_tail
    assert _intermediate_containers_gone(engine)


def test_an_invalid_dockerfile_is_a_clear_failure_without_retries(
    host, project, run_workflow, engine
):
    (project / "Dockerfile").write_text("FROM scratch\nBOGUS instruction\n")
    task = {"id": "b", "type": "docker", "context": ".", "retry": {"attempts": 3}}
    execution = run_workflow(make_workflow(task), env=host)
    b = execution.tasks["b"]
    assert b.status is State.FAILED and len(b.attempts) == 1
    assert str(project / "Dockerfile") in b.error
    assert "unknown instruction: BOGUS" in b.error
    assert "Traceback" not in "\n".join(b.log_tail)


def test_missing_dockerfile_and_context_name_the_path(project, run_workflow):
    (project / "empty").mkdir()
    execution = run_workflow(
        make_workflow(
            {"id": "nofile", "type": "docker", "context": "empty"},
            {"id": "nodir", "type": "docker", "context": "no-such-dir", "tags": ["x:1"]},
            {"id": "named", "type": "docker", "dockerfile": "docker/App.Dockerfile"},
        ),
        env={"DOCKER_HOST": "unix:///nonexistent.sock"},  # checked before the engine is asked
    )
    tasks = execution.tasks
    assert tasks["nofile"].error == f"Dockerfile {project / 'empty' / 'Dockerfile'} not found"
    assert tasks["nodir"].error == f"build context {project / 'no-such-dir'} is not a directory"
    assert tasks["named"].error == f"Dockerfile {project / 'docker' / 'App.Dockerfile'} not found"


def test_a_build_that_times_out_is_stopped_by_the_engine(
    engine, busybox, host, project, run_workflow
):
    (project / "Dockerfile").write_text(f"FROM {busybox}\nRUN sleep 30\n")
    started = time.monotonic()
    execution = run_workflow(
        make_workflow({"id": "b", "type": "docker", "context": ".", "timeout": "1s"}), env=host
    )
    assert execution.tasks["b"].status is State.TIMED_OUT
    assert time.monotonic() - started < 5
    assert _intermediate_containers_gone(engine)


def _intermediate_containers_gone(engine: dockerd.Engine, within: float = 5.0) -> bool:
    """The engine removes a build's step containers itself, a moment after the build ends."""
    client = _client(engine)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        building = [
            c for c in client.api.containers(all=True) if LABEL not in (c.get("Labels") or {})
        ]
        if not building:
            return True
        time.sleep(0.05)
    return False


# --------------------------------------------------------------------------------- run


def test_run_gives_stdout_as_result_and_streams_both_streams(busybox, host, run_workflow):
    events: list[Any] = []
    execution = run_workflow(
        make_workflow(
            _run(busybox, ["sh", "-c", "echo warn >&2; echo '{\"ok\": true}'"]),
        ),
        env=host,
        sinks=[events.append],
    )
    r = execution.tasks["r"]
    assert r.status is State.SUCCEEDED and r.exit_code == 0 and r.result == {"ok": True}
    streams = {(e.stream, e.line) for e in events if isinstance(e, OutputLine)}
    assert ("stderr", "warn") in streams and ("stdout", '{"ok": true}') in streams


def test_output_streams_while_the_container_runs(busybox, host, run_workflow):
    events: list[Any] = []
    command = ["sh", "-c", "echo first; sleep 1; echo second"]
    run_workflow(make_workflow(_run(busybox, command)), env=host, sinks=[events.append])
    lines = {e.line: e.at for e in events if isinstance(e, OutputLine)}
    ended = next(e.at for e in events if isinstance(e, TaskEnded))
    assert ended - lines["first"] > 0.8 and lines["second"] - lines["first"] > 0.8


def test_exit_code_fails_the_task_with_the_last_stderr_line(busybox, host, run_workflow):
    command = ["sh", "-c", "echo partial; echo it broke >&2; exit 3"]
    execution = run_workflow(make_workflow(_run(busybox, command)), env=host)
    r = execution.tasks["r"]
    assert r.status is State.FAILED and r.exit_code == 3
    assert r.error == "exited with code 3: it broke" and r.result == "partial"


def test_only_the_task_environment_reaches_the_container(busybox, host, run_workflow):
    task = _run(
        busybox,
        "env",
        environment={"GREETING": "hi ${env.WHO}", "EMPTY": ""},
        working_dir="/work/${env.WHO}",
    )
    execution = run_workflow(
        make_workflow(task, _run(busybox, "pwd", task_id="cwd", working_dir="/work/here")),
        env={**host, "WHO": "there", "HOST_ONLY": "not-for-containers"},
    )
    lines = execution.tasks["r"].result.splitlines()
    assert "GREETING=hi there" in lines and "EMPTY=" in lines
    assert not [line for line in lines if "HOST_ONLY" in line or "DOCKER_HOST" in line]
    assert execution.tasks["cwd"].result == "/work/here"


def test_a_string_command_is_split_and_values_stay_one_word(busybox, host, run_workflow):
    command = "printf '[%s]' ${env.A} 'b c' \"${env.A}\""
    execution = run_workflow(
        make_workflow(_run(busybox, command)), env={**host, "A": "x; echo 'y z' $(id)"}
    )
    assert execution.tasks["r"].result == "[x; echo 'y z' $(id)][b c][x; echo 'y z' $(id)]"


def test_command_argv_splits_before_values_go_in():
    scope = Scope(env={"A": "a b", "Q": "'\"", "E": ""})
    assert command_argv("run ${env.A} --x=${env.A}", scope) == ["run", "a b", "--x=a b"]
    assert command_argv("echo '${env.Q}' $${HOME} ${env.E}", scope) == [
        "echo",
        "'\"",
        "${HOME}",
        "",
    ]
    assert command_argv(["sh", "-c", "echo ${env.A}"], scope) == ["sh", "-c", "echo a b"]


def test_volumes_mount_project_folders_relative_to_the_project_root(
    busybox, host, project, run_workflow
):
    (project / "data").mkdir()
    (project / "in").mkdir()
    (project / "in" / "x.txt").write_text("from the host\n")
    command = [
        "sh",
        "-c",
        "echo written > /data/out.txt; cat /in/x.txt; (echo no > /in/y.txt) 2>/dev/null || true",
    ]
    task = _run(busybox, command, volumes=["data:/data", "./in:/in:ro"])
    execution = run_workflow(make_workflow(task), env=host)
    assert execution.tasks["r"].status is State.SUCCEEDED, execution.tasks["r"].error
    assert (project / "data" / "out.txt").read_text() == "written\n"
    assert execution.tasks["r"].result == "from the host"
    assert not (project / "in" / "y.txt").exists()  # :ro held


def test_malformed_volumes_and_empty_names_are_clear_failures(project, run_workflow):
    (project / "Dockerfile").write_text("FROM scratch\n")
    execution = run_workflow(
        make_workflow(
            _run("any:1", "true", task_id="volume", volumes=["justone"]),
            _run("${env.NO_SUCH_IMAGE}", "true", task_id="image"),
            {"id": "tag", "type": "docker", "context": ".", "tags": ["app:${env.NO_TAG}"]},
        ),
        env={"DOCKER_HOST": "unix:///nonexistent.sock"},  # checked before the engine is asked
    )
    tasks = execution.tasks
    assert tasks["volume"].error.startswith("volume 'justone': expected HOST:CONTAINER")
    assert tasks["image"].error == "image '${env.NO_SUCH_IMAGE}' renders as ''"
    assert tasks["tag"].error == "tag 'app:${env.NO_TAG}' renders as 'app:': not an image name"


def test_containers_carry_the_label_and_are_removed_after_success_and_failure(
    engine, busybox, host, run_workflow, monkeypatch
):
    workflow = make_workflow(_run(busybox, "true", task_id="ok"), _run(busybox, "false", "bad"))
    execution = run_workflow(workflow, env=host)
    assert execution.tasks["ok"].status is State.SUCCEEDED
    assert execution.tasks["bad"].status is State.FAILED
    assert _leftovers(engine, execution.id) == []
    # The same run with removal switched off leaves both, found by that label: the check
    # above looks at the right containers.
    monkeypatch.setattr(docker_task, "remove", lambda api, container: None)
    kept = run_workflow(workflow, env=host)
    leftovers = _leftovers(engine, kept.id)
    with contextlib.closing(_client(engine)) as client:
        configs = [client.api.inspect_container(c) for c in leftovers]
        for container in leftovers:
            client.api.remove_container(container, force=True)
    assert len(leftovers) == 2
    for config in configs:
        assert config["HostConfig"]["NetworkMode"] == "none"
        labels = config["Config"]["Labels"]
        assert labels["jupyter-workflows.task"] in ("ok", "bad")
        assert labels["jupyter-workflows.attempt"] == "1"


def test_a_timeout_kills_and_removes_the_container_promptly(engine, busybox, host, run_workflow):
    started = time.monotonic()
    execution = run_workflow(
        make_workflow(_run(busybox, "sleep 30", timeout="1s")), env=host, kill_grace=0.5
    )
    elapsed = time.monotonic() - started
    r = execution.tasks["r"]
    assert r.status is State.TIMED_OUT and "timed out" in r.error
    assert elapsed < 4
    assert _leftovers(engine, execution.id) == []


def test_cancelling_the_run_removes_the_container(engine, busybox, host, project):
    orchestrator = WorkflowOrchestrator(project, kill_grace=0.5)
    run = orchestrator.prepare(make_workflow(_run(busybox, "sleep 30")), env=host)

    async def main() -> None:
        job = asyncio.ensure_future(orchestrator.run_prepared(run))
        label = f"{LABEL}={run.execution.id}"
        for _ in range(100):  # until the container exists
            if await asyncio.to_thread(dockerd.containers_labelled, engine.host, label):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the container never started")
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 4
    assert run.execution.tasks["r"].status is State.CANCELLED
    assert _leftovers(engine, run.execution.id) == []


def test_containers_run_in_threads_so_tasks_overlap(busybox, host, run_workflow):
    tasks = [_run(busybox, "sleep 1", task_id=f"s{i}") for i in range(3)]
    started = time.monotonic()
    execution = run_workflow(make_workflow(*tasks), env=host, max_parallel=3)
    assert execution.status is State.SUCCEEDED
    assert time.monotonic() - started < 2.0  # one after another: 3.6 s


def test_an_image_the_engine_cannot_pull_is_a_clear_failure(host, run_workflow):
    # A registry on 127.0.0.1 that is not there: refused at once, no other host contacted.
    execution = run_workflow(make_workflow(_run("127.0.0.1:9/jw-missing:1", "true")), env=host)
    r = execution.tasks["r"]
    assert r.status is State.FAILED
    assert r.error.startswith("cannot pull image '127.0.0.1:9/jw-missing:1': ")


def test_a_command_missing_in_the_image_fails_like_docker_run(engine, busybox, host, run_workflow):
    execution = run_workflow(make_workflow(_run(busybox, ["no-such-command"])), env=host)
    r = execution.tasks["r"]
    assert r.status is State.FAILED and r.exit_code == 127
    assert r.error.startswith("cannot start the container: ") and "no-such-command" in r.error
    assert _leftovers(engine, execution.id) == []


# ------------------------------------------------------------------------------ engine


def test_an_unreachable_engine_is_one_clear_message(project, run_workflow):
    # The build never reaches an engine: a stand-in for busybox will do (none may be installed).
    (project / "busybox").write_bytes(b"#!/bin/sh\n")
    (project / "Dockerfile").write_text(dockerd.BUSYBOX_DOCKERFILE)
    execution = run_workflow(
        make_workflow(
            {"id": "build", "type": "docker", "context": "."},
            {"id": "run", "type": "docker", "image": "anything:1"},
        ),
        env={"DOCKER_HOST": "unix:///nonexistent.sock"},
    )
    expected = (
        "cannot reach a Docker engine at unix:///nonexistent.sock (No such file or directory): "
        "is dockerd running? (set DOCKER_HOST)"
    )
    for task in execution.tasks.values():
        assert task.status is State.FAILED and task.error == expected
        assert not any("Traceback" in line for line in task.log_tail)
