"""Which tasks of a run are not run but reused, and with which recorded values.

Two sources of reuse, one decision per task when it becomes ready (``Reuse.decide``):

- **Resume** (``plan_resume``): a run resuming execution X reuses every task that succeeded
  in X, whose definition hash is the one X recorded, and whose upstream tasks are all reused
  too; everything else runs. ``from_task`` re-runs that task and everything downstream of it
  as well; ``only`` runs that one task with its upstream tasks reused from X (they must have
  succeeded there) and skips every other.
- **Cache** (``cache:`` on a task): a task whose cache key (``fingerprint.cache_key``) matches
  an entry of an earlier successful run, not older than ``expire`` and not cleared, is reused
  from that run. ``no_cache`` ignores every entry, ``refresh`` names tasks whose entries are
  ignored; either way the task's new result is recorded under its key.

A reused task ends ``succeeded`` with ``reused`` set to "resumed" or "cached" (see
``execution/events.py``): conditions and dependents see a success, every surface can tell.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..definition.templates import Scope, TaskView
from ..errors import ResumeRefused, WorkflowError
from ..execution.records import Execution
from ..execution.states import State
from .fingerprint import cache_key, fingerprint

if TYPE_CHECKING:
    from ..definition.model import TaskBase, Workflow
    from ..store.models import CacheEntry

RESUMED = "resumed"
CACHED = "cached"


@dataclass(frozen=True)
class Recorded:
    """What a task ended with in an earlier execution: what it ends with when reused."""

    execution_id: str
    result: Any = None
    outputs: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None


@dataclass
class ResumePlan:
    """Per task of the workflow: reused (with its values), skipped, or run (and why)."""

    execution_id: str
    reuse: dict[str, Recorded] = field(default_factory=dict)
    skip: dict[str, str] = field(default_factory=dict)
    run: dict[str, str] = field(default_factory=dict)


def check_resumable(workflow: Workflow, old: Execution) -> None:
    """Refuse (ResumeRefused) to resume a run of another workflow or one not ended."""
    if old.workflow != workflow.name:
        raise ResumeRefused(
            old.id,
            f"it is a run of workflow '{old.workflow}', not of '{workflow.name}'",
        )
    if not State(old.status).is_terminal:
        raise ResumeRefused(
            old.id, f"it is still {old.status}; wait for it to end, or cancel it, first"
        )


def plan_resume(
    workflow: Workflow,
    hashes: Mapping[str, str],
    old: Execution,
    *,
    from_task: str | None = None,
    only: str | None = None,
) -> ResumePlan:
    """Decide, for each top-level task, whether a run resuming ``old`` reuses, skips or runs it.

    ``hashes``: the definition hash of each task now. Raises ResumeRefused for a run that
    cannot be resumed (``check_resumable``), an unknown ``from_task``/``only``, both given,
    or ``only`` with an upstream task that did not succeed in ``old``.
    """
    check_resumable(workflow, old)
    tasks = _scheduled(workflow)
    for option, name in (("--from", from_task), ("--only", only)):
        if name is not None and name not in tasks:
            known = ", ".join(tasks) or "none"
            raise ResumeRefused(old.id, f"{option}: the workflow has no task '{name}' ({known})")
    if from_task is not None and only is not None:
        raise ResumeRefused(old.id, "give --from or --only, not both")
    plan = ResumePlan(old.id)
    if only is not None:
        return _plan_only(plan, tasks, old, only)
    forced = _downstream(tasks, from_task) if from_task is not None else set()
    for task_id, task in tasks.items():  # upstream before downstream
        record = old.tasks.get(task_id)
        rerun = [dep for dep in task.depends_on if dep in plan.run]
        if task_id in forced:
            plan.run[task_id] = f"--from {from_task}"
        elif record is None:
            plan.run[task_id] = f"not in execution {old.id}"
        elif record.status is not State.SUCCEEDED:
            plan.run[task_id] = f"{record.status} in execution {old.id}"
        elif record.definition_hash is None:
            plan.run[task_id] = f"execution {old.id} did not record its definition"
        elif record.definition_hash != hashes.get(task_id):
            plan.run[task_id] = f"its definition changed since execution {old.id}"
        elif rerun:
            plan.run[task_id] = f"upstream task '{rerun[0]}' runs again"
        else:
            plan.reuse[task_id] = _recorded(old, task_id)
    return plan


def _plan_only(
    plan: ResumePlan, tasks: dict[str, TaskBase], old: Execution, only: str
) -> ResumePlan:
    upstream = _upstream(tasks, only)
    for task_id in tasks:
        if task_id == only:
            plan.run[task_id] = f"--only {only}"
        elif task_id in upstream:
            record = old.tasks.get(task_id)
            if record is None or record.status is not State.SUCCEEDED:
                status = "absent" if record is None else str(record.status)
                raise ResumeRefused(
                    old.id,
                    f"--only {only} takes its upstream values from that run, but upstream task "
                    f"'{task_id}' did not succeed there ({status}); resume without --only",
                )
            plan.reuse[task_id] = _recorded(old, task_id)
        else:
            plan.skip[task_id] = f"not selected (--only {only})"
    return plan


def _recorded(old: Execution, task_id: str) -> Recorded:
    record = old.tasks[task_id]
    return Recorded(old.id, record.result, dict(record.outputs), record.exit_code)


def _scheduled(workflow: Workflow) -> dict[str, TaskBase]:
    """The tasks a run schedules (on_failure handlers only run as handlers), each after its
    dependencies (validation has ruled out cycles), else in file order."""
    handlers = {t.on_failure for t in workflow.tasks if isinstance(t.on_failure, str)}
    left = {t.id: t for t in workflow.tasks if t.id and t.id not in handlers}
    ordered: dict[str, TaskBase] = {}
    while left:
        ready = [
            i for i, t in left.items() if all(d in ordered or d not in left for d in t.depends_on)
        ]
        for task_id in ready or list(left):  # a cycle cannot be, but must not loop forever
            ordered[task_id] = left.pop(task_id)
    return ordered


def _downstream(tasks: Mapping[str, TaskBase], start: str) -> set[str]:
    found = {start}
    changed = True
    while changed:
        changed = False
        for task_id, task in tasks.items():
            if task_id not in found and any(dep in found for dep in task.depends_on):
                found.add(task_id)
                changed = True
    return found


def _upstream(tasks: Mapping[str, TaskBase], start: str) -> set[str]:
    found: set[str] = set()
    stack = list(tasks[start].depends_on)
    while stack:
        dep = stack.pop()
        if dep not in found and dep in tasks:
            found.add(dep)
            stack.extend(tasks[dep].depends_on)
    return found


@dataclass(frozen=True)
class Decision:
    """What a run does with a ready task: ``run`` (under ``cache_key`` if cached), ``reuse``
    (``recorded``, ``how``), ``skip`` or ``fail`` (with ``reason``)."""

    action: str
    reason: str | None = None
    recorded: Recorded | None = None
    how: str | None = None
    cache_key: str | None = None


class Reuse:
    """One run's reuse decisions, and the fingerprints of its ended tasks."""

    def __init__(
        self,
        hashes: Mapping[str, str],
        *,
        project_root: Path,
        resume: ResumePlan | None = None,
        cache: Mapping[str, Iterable[CacheEntry]] | None = None,
        no_cache: bool = False,
        refresh: Iterable[str] = (),
        clock: Callable[[], float],
        params: Mapping[str, Any] | None = None,
    ):
        self.hashes = dict(hashes)
        self.params = dict(params) if params is not None else None  # what the run runs with
        self.project_root = project_root
        self.resume = resume
        self.cache = {task_id: list(entries) for task_id, entries in (cache or {}).items()}
        self.no_cache = no_cache
        self.refresh = set(refresh)
        self.clock = clock
        self.fingerprints: dict[str, str] = {}
        self.keys: dict[str, str] = {}

    def decide(self, task: TaskBase, scope: Scope) -> Decision:
        task_id = task.id or ""
        key, key_error = self._key(task, scope)
        if self.resume is not None:
            if task_id in self.resume.skip:
                return Decision("skip", reason=self.resume.skip[task_id])
            if task_id in self.resume.reuse:
                return Decision(
                    "reuse", recorded=self.resume.reuse[task_id], how=RESUMED, cache_key=key
                )
        if key_error is not None:
            return Decision("fail", reason=f"the cache key cannot be evaluated: {key_error}")
        if key is None:
            return Decision("run")
        if not self.no_cache and task_id not in self.refresh:
            entry = self.lookup(task, key)
            if entry is not None:
                recorded = Recorded(
                    entry.execution_id, entry.result, dict(entry.outputs), entry.exit_code
                )
                return Decision("reuse", recorded=recorded, how=CACHED, cache_key=key)
        return Decision("run", cache_key=key)

    def lookup(self, task: TaskBase, key: str) -> CacheEntry | None:
        """The newest entry of ``task`` under ``key`` not older than its ``expire``."""
        config = task.cache_config
        oldest = None if config is None or config.expire is None else self.clock() - config.expire
        matching = [
            e
            for e in self.cache.get(task.id or "", ())
            if e.key == key and (oldest is None or e.created_at >= oldest)
        ]
        return max(matching, key=lambda e: e.created_at, default=None)

    def _key(self, task: TaskBase, scope: Scope) -> tuple[str | None, Exception | None]:
        if task.cache_config is None:
            return None, None
        try:
            key = cache_key(
                task, self.hashes.get(task.id or "", ""), scope, self.fingerprints,
                self.project_root,
            )  # fmt: skip
        except (WorkflowError, OSError) as exc:
            return None, exc
        self.keys[task.id or ""] = key
        return key, None

    def ended(self, task: TaskBase, view: TaskView) -> None:
        """Remember what downstream cache keys see of ``task``, now that it ended."""
        task_id = task.id or ""
        values = {
            "status": view.status,
            "result": view.result,
            "outputs": view.outputs,
            "exit_code": view.exit_code,
        }
        upstream = {dep: self.fingerprints.get(dep) for dep in task.depends_on}
        key = self.keys.get(task_id) if view.status == str(State.SUCCEEDED) else None
        self.fingerprints[task_id] = fingerprint(self.hashes.get(task_id), upstream, values, key)


def copy_artifacts(source: Path, target: Path, task_id: str) -> bool:
    """Give a reused task its earlier run's files (an executed notebook): ``source/task_id``
    linked (else copied) into ``target/task_id``. Whether there were any."""
    origin = source / task_id
    if not origin.is_dir():
        return False
    destination = target / task_id
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(origin, destination, copy_function=_link_or_copy, dirs_exist_ok=True)
    return True


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed: a copy will do
        shutil.copy2(src, dst)


def moved(value: Any, source: Path, target: Path) -> Any:
    """``value`` with paths into the earlier run's artifacts (``source``) pointing into this
    run's (``target``) instead, so a reused result names files this execution keeps."""
    old = str(source)
    if isinstance(value, str):
        return str(target) + value[len(old) :] if value.startswith(old + os.sep) else value
    if isinstance(value, list):
        return [moved(v, source, target) for v in value]
    if isinstance(value, dict):
        return {k: moved(v, source, target) for k, v in value.items()}
    return value
