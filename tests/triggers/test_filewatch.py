"""File-change triggers against real files in a temp project, a real RunQueue and orchestrator.

Every run is a real workflow whose shell task appends the variables it received to
``events.log`` at the project root (outside the watched patterns unless a test says otherwise),
so each assertion is about what a task actually saw.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jupyter_workflows.definition.model import FileChangeConfig, FileChangeTrigger, Workflow
from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.engine.queue import RunQueue
from jupyter_workflows.errors import DefinitionError
from jupyter_workflows.store import ExecutionStore, default_store_path
from jupyter_workflows.triggers.filewatch import FileWatcher, FileWatchJob, change_env
from jupyter_workflows.triggers.globs import PathMatcher, expand_braces, watch_plan
from tests.conftest import make_workflow

RECORD = (
    "size=$(wc -c 2>/dev/null < \"$CHANGED_FILE\" | tr -d ' '); "
    'printf \'%s|%s|%s|%s|%s|%s|%s\\n\' "$CHANGED_FILE" "$FILE_EVENT" "$FILE_NAME" '
    '"$FILE_DIR" "$FILE_EXT" ${env.FILE_EVENT} "$${size:--}" >> events.log'
)


def job(
    root: Path, files: list[str], *, ignore: list[str] = (), debounce: float = 0.05,
    command: str = RECORD, name: str = "on-change",
) -> FileWatchJob:  # fmt: skip
    """A job whose definition is also written to workflows/definitions/NAME.json."""
    data = _definition(files, ignore, debounce, command, name)
    path = root / "workflows" / "definitions" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    found = FileWatchJob.from_workflow(path, Workflow.model_validate(data))
    assert found is not None
    return found


def _definition(files, ignore, debounce, command, name) -> dict[str, Any]:
    trigger = {"type": "file_change", "config": {"files": files, "ignore": list(ignore),
                                                 "debounce": f"{debounce}s"}}  # fmt: skip
    return {"name": name, "trigger": trigger,
            "tasks": [{"id": "record", "type": "shell", "command": command}]}  # fmt: skip


class Watching:
    """A FileWatcher running in this loop over a real RunQueue; ``runs`` counts its launches."""

    def __init__(self, root: Path, *jobs: FileWatchJob, settle: float = 0.05, **queue: Any):
        self.root = root
        self.logs: list[str] = []
        self.queue = RunQueue(WorkflowOrchestrator(root, kill_grace=0.5), **queue)
        self.watcher = FileWatcher(self.queue, jobs, root=root, settle=settle,
                                   log=self.logs.append)  # fmt: skip
        self.stop = asyncio.Event()

    async def __aenter__(self) -> Watching:
        self.task = asyncio.create_task(self.watcher.run(self.stop))
        await asyncio.wait_for(self.watcher.ready.wait(), 5)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 5)
        await asyncio.wait_for(self.queue.join(), 10)

    @property
    def launched(self) -> list[str]:
        return [line for line in self.logs if " -> " in line]

    def events(self) -> list[list[str]]:
        """Recorded variables, CHANGED_FILE and FILE_DIR shown relative to the root (they are
        absolute: the prefix is checked and cut here so the expectations stay readable)."""
        log = self.root / "events.log"
        lines = log.read_text().splitlines() if log.exists() else []
        rows = [line.split("|") for line in lines]
        root = str(self.root.resolve())
        for row in rows:
            assert row[0].startswith(root + "/") and row[3].startswith(root), row
            row[0] = row[0][len(root) + 1 :]
            row[3] = row[3][len(root) + 1 :] or "."
        return rows

    async def until(self, check: Callable[[], bool], timeout: float = 6.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; logs: {self.logs}, events: {self.events()}")
            await asyncio.sleep(0.02)

    async def runs_done(self, count: int) -> list[list[str]]:
        """Wait for ``count`` recorded events and the queue to drain; the events, in order."""
        await self.until(lambda: len(self.events()) >= count)
        await asyncio.wait_for(self.queue.join(), 10)
        return self.events()

    async def quiet(self, seconds: float = 0.4) -> None:
        """Give a wrongly fired run time to show up (debounce + settle + a run, with margin)."""
        await asyncio.sleep(seconds)
        await asyncio.wait_for(self.queue.join(), 10)


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


# ------------------------------------------------------------------------- patterns


@pytest.mark.parametrize(
    ("files", "ignore", "path", "expected"),
    [
        (["src/**/*.ts"], [], "src/a.ts", True),
        (["src/**/*.ts"], [], "src/x/y/a.ts", True),
        (["src/**/*.ts"], [], "src/a.tsx", False),
        (["src/**/*.ts"], [], "lib/src/a.ts", False),
        (["package.json"], [], "package.json", True),
        (["package.json"], [], "sub/package.json", False),
        (["*.md"], [], "README.md", True),
        (["*.md"], [], "docs/README.md", False),
        (["**/*.{ts,tsx}"], [], "a/b.tsx", True),
        (["{src,lib}/**"], [], "lib/deep/x", True),
        (["data/file?.csv"], [], "data/file1.csv", True),
        (["data/file[!0-9].csv"], [], "data/file1.csv", False),
        (["./src/**/"], [], "src/x", True),
        (["src/**"], ["*.log"], "src/deep/x.log", False),
        (["src/**"], ["gen"], "src/gen/x.ts", False),
        (["src/**"], ["src/gen/**"], "src/gen/x.ts", False),
        (["src/**"], ["src/gen"], "src/gen/x.ts", False),
        (["src/**"], ["src/gen"], "src/other/gen.ts", True),
        (["src/**"], ["**/*.test.ts"], "src/a/b.test.ts", False),
    ],
)
def test_globs_match_like_the_docs_say(files, ignore, path, expected):
    assert PathMatcher(files, ignore).matches(path) is expected


def test_brace_expansion_handles_nesting_and_slashes():
    assert expand_braces("a/{b,c/d}/*.{x,y{1,2}}") == [
        "a/b/*.x", "a/b/*.y1", "a/b/*.y2", "a/c/d/*.x", "a/c/d/*.y1", "a/c/d/*.y2",
    ]  # fmt: skip
    assert expand_braces("{single}.txt") == ["{single}.txt"]


@pytest.mark.parametrize("pattern", ["/etc/passwd", "../outside/*.txt", "src/../../x", ""])
def test_patterns_outside_the_root_are_refused_with_their_place(project, pattern):
    # The model refuses them when a definition loads; a job built from a workflow made in code
    # (model_construct skips validation) refuses them too.
    workflow = make_workflow({"id": "t", "type": "shell", "command": "true"})
    trigger = FileChangeTrigger.model_construct(
        type="file_change", config=FileChangeConfig.model_construct(files=[pattern], ignore=[],
                                                                    debounce=0.05)
    )  # fmt: skip
    workflow = workflow.model_copy(update={"trigger": trigger})
    with pytest.raises(DefinitionError) as caught:
        FileWatchJob.from_workflow(project / "on-change.json", workflow)
    message = str(caught.value)
    assert "on-change.json" in message and "trigger.config.files" in message


def test_only_a_file_change_trigger_makes_a_job(project):
    assert FileWatchJob.from_workflow(project / "x.json", make_workflow(
        {"id": "a", "type": "shell", "command": "true"})) is None  # fmt: skip
    found = job(project, ["src/**"], ignore=["*.log"], debounce=1.5)
    assert (found.patterns, found.ignore, found.debounce) == (["src/**"], ["*.log"], 1.5)


def test_the_watch_plan_reaches_only_what_the_patterns_can(project):
    (project / "src" / "deep").mkdir(parents=True)
    (project / "docs").mkdir()
    plan = watch_plan(project, ["src/**/*.ts", "src/deep/*.ts", "package.json", "docs/*.md"])
    assert plan.deep == [project / "src"]  # src/deep is inside it already
    assert plan.flat == [project, project / "docs"]  # the root itself, without its subtree
    missing = watch_plan(project, ["lib/*.py"])  # lib appears later: watch from the root down
    assert (missing.deep, missing.flat, missing.wanted) == ([project], [], {project / "lib"})


def test_variables_of_a_change(tmp_path):
    assert change_env("src/app/main.test.ts", "add", tmp_path) == {
        "CHANGED_FILE": f"{tmp_path}/src/app/main.test.ts",
        "CHANGED_FILE_RELATIVE": "src/app/main.test.ts", "FILE_EVENT": "add",
        "FILE_NAME": "main.test.ts", "FILE_DIR": f"{tmp_path}/src/app", "FILE_EXT": ".ts",
    }  # fmt: skip
    assert change_env(".env", "unlink", tmp_path)["FILE_EXT"] == ""
    assert change_env("Makefile", "change", tmp_path)["FILE_DIR"] == str(tmp_path)


# ------------------------------------------------------------------------- events


def test_add_change_unlink_reach_the_task_with_every_variable(project):
    (project / "src" / "sub").mkdir(parents=True)
    target = project / "src" / "sub" / "notes.txt"

    async def scenario(w: Watching) -> None:
        target.write_text("one")
        await w.runs_done(1)
        target.write_text("two, longer")
        await w.runs_done(2)
        target.unlink()
        await w.runs_done(3)
        await w.quiet()

    async def main() -> Watching:
        async with Watching(project, job(project, ["src/**/*.txt"])) as w:
            await scenario(w)
        return w

    w = run(main())
    assert w.events() == [
        ["src/sub/notes.txt", "add", "notes.txt", "src/sub", ".txt", "add", "3"],
        ["src/sub/notes.txt", "change", "notes.txt", "src/sub", ".txt", "change", "11"],
        ["src/sub/notes.txt", "unlink", "notes.txt", "src/sub", ".txt", "unlink", "-"],
    ]
    history = ExecutionStore(default_store_path(project)).history(limit=10)
    assert [(h.status, h.trigger) for h in history] == [("succeeded", "file_change")] * 3
    recorded = ExecutionStore(default_store_path(project)).get_execution(history[0].id)
    assert recorded.file == str(project / "workflows" / "definitions" / "on-change.json")


def test_a_burst_gives_one_run_per_changed_file(project):
    """Decided: per file, because the variables describe one file; 3 files -> 3 runs."""
    (project / "src").mkdir()

    async def main() -> Watching:
        async with Watching(project, job(project, ["src/*.txt"], debounce=0.3)) as w:
            for round_ in range(5):  # 15 writes within about 0.1 s
                for name in ("a", "b", "c"):
                    (project / "src" / f"{name}.txt").write_text(f"round {round_}")
                await asyncio.sleep(0.02)
            await w.runs_done(3)
            await w.quiet(0.6)
        return w

    w = run(main())
    assert sorted((e[0], e[1]) for e in w.events()) == [
        ("src/a.txt", "add"), ("src/b.txt", "add"), ("src/c.txt", "add"),
    ]  # fmt: skip


def test_a_slowly_written_file_fires_once_when_complete(project):
    (project / "in").mkdir()
    chunk = "x" * 1000

    async def main() -> tuple[Watching, float, float]:
        async with Watching(project, job(project, ["in/*.csv"]), settle=0.4) as w:
            with (project / "in" / "big.csv").open("w") as handle:
                for _ in range(12):  # a write every 0.08 s for about a second
                    await asyncio.sleep(0.08)
                    handle.write(chunk)
                    handle.flush()
                    written = time.monotonic()
            await w.runs_done(1)
            fired = time.monotonic()
            await w.quiet(0.8)
        return w, written, fired

    w, written, fired = run(main())
    assert w.events() == [["in/big.csv", "add", "big.csv", "in", ".csv", "add", "12000"]]
    assert fired - written >= 0.4  # it waited for the size to hold still


def test_ignore_patterns_and_always_ignored_directories(project):
    (project / "src" / "gen").mkdir(parents=True)
    noise = ["src/debug.log", "src/gen/out.txt", "node_modules/pkg/index.txt", ".git/HEAD",
             "src/__pycache__/m.txt", ".venv/lib/x.txt", ".ipynb_checkpoints/n.txt",
             "src/.notes.txt.swp"]  # fmt: skip
    watched = job(project, ["**"], ignore=["*.log", "src/gen", "events.log"])

    async def main() -> Watching:
        async with Watching(project, watched) as w:
            for rel in noise:
                (project / rel).parent.mkdir(parents=True, exist_ok=True)
                (project / rel).write_text("noise")
            (project / "src" / "real.txt").write_text("signal")
            await w.runs_done(1)
            # The run wrote its journal into workflows/.executions (watched by "**" were it
            # not the store): a second run would show up now.
            await w.quiet(0.6)
        return w

    w = run(main())
    assert [e[:2] for e in w.events()] == [["src/real.txt", "add"]]
    assert (project / "workflows" / ".executions").is_dir()


def test_a_change_during_its_run_queues_one_follow_up(project):
    (project / "src").mkdir()
    slow = RECORD + "; sleep 0.6"

    async def main() -> Watching:
        async with Watching(project, job(project, ["src/*.txt"], command=slow)) as w:
            target = project / "src" / "a.txt"
            target.write_text("1")
            await w.until(lambda: len(w.events()) == 1)  # the run has read it and sleeps
            for text in ("22", "333", "4444"):  # three separate bursts while it runs
                target.write_text(text)
                await asyncio.sleep(0.15)
            await w.runs_done(2)
            await w.quiet(0.5)
        return w

    w = run(main())
    assert [e[1] for e in w.events()] == ["add", "change"]
    assert [e[6] for e in w.events()] == ["1", "4"]  # the follow-up saw the last content
    assert sum("follow-up" in line for line in w.logs) == 1


def test_a_full_queue_drops_changes_with_a_log_line_and_keeps_watching(project):
    (project / "src").mkdir()
    slow = RECORD + "; sleep 0.5"

    async def main() -> Watching:
        watched = job(project, ["src/*.txt"], command=slow)
        async with Watching(project, watched, concurrency=1, max_waiting=0) as w:
            for name in ("a", "b", "c"):
                (project / "src" / f"{name}.txt").write_text(name)
            await w.runs_done(1)
            (project / "src" / "d.txt").write_text("later")
            await w.runs_done(2)
        return w

    w = run(main())
    assert [e[0] for e in w.events()] == ["src/a.txt", "src/d.txt"]
    dropped = [line for line in w.logs if "queue full" in line]
    assert len(dropped) == 1 and "2 change(s)" in dropped[0] and "src/b.txt (add)" in dropped[0]


# ------------------------------------------------------------------------- directories


def test_editor_replace_is_a_change_and_temp_files_fire_nothing(project):
    (project / "src").mkdir()
    (project / "src" / "a.txt").write_text("old")

    async def main() -> Watching:
        async with Watching(project, job(project, ["src/*"])) as w:
            temp = project / "src" / ".a.txt.tmp"
            temp.write_text("new content")
            os.replace(temp, project / "src" / "a.txt")
            await w.runs_done(1)
            await w.quiet()
        return w

    w = run(main())
    assert [e[:2] for e in w.events()] == [["src/a.txt", "change"]]


def test_directories_moved_in_removed_and_recreated(project, tmp_path):
    (project / "src").mkdir()
    (project / "src" / "old.txt").write_text("old")
    outside = tmp_path / "pkg"
    outside.mkdir()
    (outside / "one.txt").write_text("1")
    (outside / "two.txt").write_text("2")

    async def main() -> Watching:
        async with Watching(project, job(project, ["src/**/*.txt"])) as w:
            os.rename(outside, project / "src" / "pkg")  # arrives as one directory event
            await w.runs_done(2)
            shutil.rmtree(project / "src")  # the watched directory itself goes
            await w.runs_done(5)
            (project / "src").mkdir()  # ... and comes back: watched again
            await asyncio.sleep(0.2)
            (project / "src" / "new.txt").write_text("new")
            await w.runs_done(6)
        return w

    w = run(main())
    events = [tuple(e[:2]) for e in w.events()]
    assert sorted(events[:2]) == [("src/pkg/one.txt", "add"), ("src/pkg/two.txt", "add")]
    assert sorted(events[2:5]) == [
        ("src/old.txt", "unlink"), ("src/pkg/one.txt", "unlink"), ("src/pkg/two.txt", "unlink"),
    ]  # fmt: skip
    assert events[5] == ("src/new.txt", "add")


def test_a_directory_missing_at_start_is_watched_once_it_appears(project):
    async def main() -> Watching:
        async with Watching(project, job(project, ["lib/*.py"])) as w:
            (project / "lib").mkdir()
            (project / "lib" / "mod.py").write_text("x = 1\n")
            await w.runs_done(1)
            await asyncio.sleep(0.2)
            (project / "lib" / "mod.py").write_text("x = 2\n")
            await w.runs_done(2)
        return w

    w = run(main())
    assert [e[:2] for e in w.events()] == [["lib/mod.py", "add"], ["lib/mod.py", "change"]]


def test_each_run_uses_the_definition_file_as_it_is_then(project):
    """Like the cron scheduler: an edited definition counts from its next run; a broken one is
    logged and the watcher keeps going."""
    (project / "src").mkdir()
    watched = job(project, ["src/*.txt"])
    definition = project / "workflows" / "definitions" / "on-change.json"

    async def main() -> Watching:
        async with Watching(project, watched) as w:
            (project / "src" / "a.txt").write_text("1")
            await w.runs_done(1)
            definition.write_text(
                json.dumps(
                    _definition(
                        ["src/*.txt"],
                        [],
                        0.05,
                        RECORD.replace("events.log", "edited.log"),
                        "on-change",
                    )
                )
            )
            (project / "src" / "a.txt").write_text("22")
            await w.until(lambda: (project / "edited.log").exists())
            await asyncio.wait_for(w.queue.join(), 10)
            definition.write_text('{"name": "on-change", "tasks": []}')
            (project / "src" / "a.txt").write_text("333")
            await w.until(lambda: any("cannot start" in line for line in w.logs))
            definition.write_text(json.dumps(_definition(["src/*.txt"], [], 0.05, RECORD,
                                                         "on-change")))  # fmt: skip
            (project / "src" / "b.txt").write_text("still watching")
            await w.runs_done(2)
        return w

    w = run(main())
    assert [e[:2] for e in w.events()] == [["src/a.txt", "add"], ["src/b.txt", "add"]]
    assert (project / "edited.log").read_text().startswith(f"{project.resolve()}/src/a.txt|change|")
    broken = next(line for line in w.logs if "cannot start" in line)
    assert "src/a.txt (change): cannot start 'on-change'" in broken and "tasks" in broken
