/**
 * One execution: its header, the tasks with their states and retries (a composite's children
 * nested under it), and the log of the selected task. Live runs are followed through
 * `ExecutionFollower`; the records it receives replace only their own rows, so a run of
 * hundreds of tasks stays cheap to watch.
 */
import { Notification } from '@jupyterlab/apputils';

import {
  IAttempt,
  IExecution,
  ITask,
  TERMINAL,
  cancelRun,
  getExecution,
  resumeRun,
  openableNotebook,
  taskLog
} from './api';
import {
  button,
  clickable,
  el,
  errorMessage,
  formatDuration,
  formatTime,
  formatTimestamp,
  statusBadge
} from './format';
import { ExecutionFollower } from './live';

export interface IDetailHost {
  /** Open a file of the server's root in JupyterLab. */
  openPath(path: string): void;
  /** Leave the detail for the lists. */
  back(): void;
  /** A followed run ended (the lists may refresh). */
  runEnded(execution: IExecution): void;
  /** Show another execution (the run a Resume started). */
  showExecution(id: string): void;
}

/** Runs that ended without success: the Resume button re-runs what did not succeed. */
const RESUMABLE: ReadonlySet<string> = new Set(['failed', 'timed_out', 'cancelled', 'crashed']);

/** The state a task row shows: its status, or `resumed`/`cached` for a reused result. */
function shownState(task: ITask): string {
  return task.reused || task.status;
}

export class ExecutionView {
  readonly node: HTMLDivElement;

  constructor(
    readonly executionId: string,
    private readonly host: IDetailHost
  ) {
    this.node = el('div', {
      cls: 'jp-Workflows-detail',
      attrs: { 'data-testid': 'execution-detail', 'data-execution-id': executionId }
    });
    this._header = el('div', { cls: 'jp-Workflows-detailHeader' });
    this._tasks = el('div', {
      cls: 'jp-Workflows-tasks',
      attrs: { 'data-testid': 'task-list' }
    });
    this._log = el('div', { cls: 'jp-Workflows-log' });
    this._summary = el('span', {
      cls: 'jp-Workflows-total',
      attrs: { 'data-testid': 'task-summary' }
    });
    this.node.append(
      el('div', { cls: 'jp-Workflows-toolbar' }, [
        button('← Executions', () => host.back(), { testid: 'detail-back' })
      ]),
      this._header,
      el('div', { cls: 'jp-Workflows-section' }, [
        el('h3', { cls: 'jp-Workflows-heading', text: 'Tasks' }),
        this._summary
      ]),
      this._tasks,
      this._log
    );
    this._header.append(el('div', { cls: 'jp-Workflows-loading', text: 'Loading…' }));
  }

  /** Load the execution; follow it live unless `finished` says it already ended. */
  load(finished: boolean): void {
    if (finished) {
      getExecution(this.executionId)
        .then(execution => this.showExecution(execution))
        .catch(error => this.fail(error));
      return;
    }
    this._follower = new ExecutionFollower(this.executionId, {
      onExecution: execution => this.showExecution(execution),
      onTasks: (_, tasks) => this.updateTasks(tasks),
      onRun: execution => this.renderHeader(execution),
      onOutput: line => this.appendLog(line.task_id, line.stream, line.line),
      onError: error => this.fail(error),
      onMode: mode => this.node.setAttribute('data-live', mode)
    });
    this._follower.start();
  }

  dispose(): void {
    this._follower?.dispose();
    this._follower = null;
    this._disposed = true;
  }

  private fail(error: unknown): void {
    if (this._disposed) {
      return;
    }
    const message = `Execution ${this.executionId}: ${errorMessage(error)}`;
    Notification.error(message, { autoClose: 8000 });
    this._header.replaceChildren(
      el('div', {
        cls: 'jp-Workflows-error',
        text: message,
        attrs: { 'data-testid': 'detail-error' }
      })
    );
  }

  private showExecution(execution: IExecution): void {
    if (this._disposed) {
      return;
    }
    this.renderHeader(execution);
    this.renderTasks(execution);
    if (this._selected) {
      this.loadLog(this._selected);
    }
    if (this._follower && !this._endReported && TERMINAL.has(execution.status)) {
      this._endReported = true;
      this.host.runEnded(execution);
    }
  }

  private renderHeader(execution: IExecution): void {
    const running = !TERMINAL.has(execution.status);
    const title = el('div', { cls: 'jp-Workflows-detailTitle' }, [
      el('span', { cls: 'jp-Workflows-name', text: execution.workflow }),
      statusBadge(execution.status)
    ]);
    if (running) {
      // Any running execution can be cancelled, whichever process runs it: the server asks
      // its owner through the store.
      const cancel = button('Cancel', () => this.cancel(cancel), {
        cls: 'jp-Workflows-cancel',
        testid: 'cancel',
        title: 'Stop this run and its processes, wherever it runs'
      });
      if (this._cancelling) {
        cancel.disabled = true;
        cancel.textContent = 'Cancelling…';
      }
      title.append(cancel);
    }
    if (RESUMABLE.has(execution.status) && execution.file) {
      title.append(
        button('Resume', () => this.resume(), { cls: 'jp-Workflows-resume', testid: 'resume' })
      );
    }
    const meta = el('dl', { cls: 'jp-Workflows-meta' });
    const add = (label: string, value: Node | string) => {
      meta.append(el('dt', { text: label }));
      const dd = el('dd');
      dd.append(value);
      meta.append(dd);
    };
    add('id', execution.id);
    add('trigger', execution.trigger ?? '—');
    if (execution.cancelled_by) {
      add(
        'cancelled by',
        el('span', { text: execution.cancelled_by, attrs: { 'data-testid': 'cancelled-by' } })
      );
    }
    const started = el('span', {
      text: formatTime(execution.started_at),
      title: formatTimestamp(execution.started_at)
    });
    add('started', started);
    add('duration', running ? 'running…' : formatDuration(execution.duration));
    if (execution.resumed_from) {
      const from = execution.resumed_from;
      add('resumed from', this.link(from, 'resumed-from', () => this.host.showExecution(from)));
    }
    if (execution.executor && execution.executor !== 'local') {
      const cluster = execution.cluster ? ` at ${execution.cluster}` : '';
      const where = `${execution.executor}${cluster}`;
      add('runs on', el('span', { text: where, attrs: { 'data-testid': 'cluster' } }));
      if (execution.dashboard && /^https?:\/\//i.test(execution.dashboard)) {
        add('dashboard', dashboardLink(execution.dashboard));
      }
    }
    if (execution.file) {
      add('file', this.link(execution.file, 'open-file'));
    }
    for (const notebook of execution.output_notebooks ?? []) {
      // `path` is the file the click opens (a visible copy when the executed notebook is
      // kept in the hidden store): the link says what it opens.
      const link = this.link(notebook.path, 'open-notebook', () =>
        this.openNotebook(execution.id, notebook.task_id)
      );
      if (notebook.source && notebook.source !== notebook.path) {
        link.title = `Open ${notebook.path}\n(a copy of the executed ${notebook.source})`;
      }
      add(`notebook (${notebook.task_id})`, link);
    }
    this._header.replaceChildren(title, meta);
    if (execution.error) {
      this._header.append(
        el('pre', {
          cls: 'jp-Workflows-error',
          text: execution.error,
          attrs: { 'data-testid': 'execution-error' }
        })
      );
    }
  }

  /** The store is a hidden folder Jupyter will not open: ask the server for a copy it will. */
  private openNotebook(executionId: string, taskId: string): void {
    openableNotebook(executionId, taskId)
      .then(found => this.host.openPath(found.path))
      .catch(error => {
        Notification.error(`Notebook of task ${taskId}: ${errorMessage(error)}`, {
          autoClose: 8000
        });
      });
  }

  private link(path: string, testid: string, open?: () => void): HTMLAnchorElement {
    const link = el('a', {
      cls: 'jp-Workflows-link',
      text: path,
      title: `Open ${path}`,
      attrs: { href: '#', 'data-testid': testid }
    });
    link.addEventListener('click', event => {
      event.preventDefault();
      if (open) {
        open();
      } else {
        this.host.openPath(path);
      }
    });
    return link;
  }

  private renderTasks(execution: IExecution): void {
    const fragment = document.createDocumentFragment();
    this._rows.clear();
    this._states.clear();
    for (const task of nested(execution.tasks)) {
      const row = this.taskRow(task);
      this._rows.set(task.id, row);
      this._states.set(task.id, shownState(task));
      fragment.appendChild(row);
    }
    this._tasks.replaceChildren(fragment);
    this._tasks.setAttribute('data-count', String(execution.tasks.length));
    this.renderSummary();
  }

  /** "3 tasks: 2 succeeded, 1 running". */
  private renderSummary(): void {
    const counts = new Map<string, number>();
    for (const state of this._states.values()) {
      counts.set(state, (counts.get(state) ?? 0) + 1);
    }
    const parts = [...counts].map(([state, n]) => `${n} ${state.replace('_', ' ')}`);
    const total = this._states.size;
    this._summary.textContent = `${total} task${total === 1 ? '' : 's'}: ${parts.join(', ')}`;
  }

  private updateTasks(tasks: ITask[]): void {
    for (const task of tasks) {
      const old = this._rows.get(task.id);
      const row = this.taskRow(task);
      this._rows.set(task.id, row);
      this._states.set(task.id, shownState(task));
      if (old) {
        old.replaceWith(row);
      } else {
        this.insertRow(task, row);
      }
    }
    this._tasks.setAttribute('data-count', String(this._rows.size));
    this.renderSummary();
  }

  /** A new task's row: after its parent's last descendant (as `nested` orders them), else last. */
  private insertRow(task: ITask, row: HTMLDivElement): void {
    const parent = task.parent ? this._rows.get(task.parent) : undefined;
    if (!parent) {
      this._tasks.appendChild(row);
      return;
    }
    let last: HTMLElement = parent;
    const subtree = new Set([task.parent]);
    for (let next = parent.nextElementSibling; next; next = next.nextElementSibling) {
      const item = next as HTMLElement;
      if (!subtree.has(item.dataset.parent ?? null)) {
        break;
      }
      subtree.add(item.dataset.taskId ?? null);
      last = item;
    }
    last.after(row);
  }

  private taskRow(task: ITask): HTMLDivElement {
    const retries = Math.max(0, task.attempts.length - 1);
    const row = el(
      'div',
      {
        cls: `jp-Workflows-task${task.parent ? ' jp-Workflows-child' : ''}${
          this._selected === task.id ? ' jp-mod-selected' : ''
        }`,
        attrs: {
          'data-task-id': task.id,
          'data-status': task.status,
          'data-testid': 'task',
          ...(task.parent ? { 'data-parent': task.parent } : {}),
          ...(task.reused ? { 'data-reused': task.reused } : {})
        },
        title: task.reused_from
          ? `result reused from execution ${task.reused_from}`
          : task.error ?? ''
      },
      [
        statusBadge(shownState(task)),
        el('span', { cls: 'jp-Workflows-taskName', text: task.name || task.id }),
        el('span', { cls: 'jp-Workflows-taskType', text: task.type }),
        retries
          ? el('span', {
              cls: 'jp-Workflows-retries',
              text: `${retries} ${retries === 1 ? 'retry' : 'retries'}`,
              title: task.attempts.map(attemptLine).join('\n')
            })
          : null,
        task.where
          ? el('span', {
              cls: 'jp-Workflows-where',
              text: task.where,
              title: `${task.status === 'running' ? 'running' : 'ran'} on ${placedOn(task)}`,
              attrs: { 'data-testid': 'task-where' }
            })
          : null,
        el('span', {
          cls: 'jp-Workflows-duration',
          text: task.status === 'running' ? progressText(task) : formatDuration(task.duration),
          title: task.status === 'running' ? task.progress?.label ?? '' : ''
        })
      ]
    );
    if (task.error) {
      row.append(el('div', { cls: 'jp-Workflows-taskError', text: task.error }));
    }
    clickable(row, () => this.select(task.id));
    return row;
  }

  private select(taskId: string): void {
    this._rows.get(this._selected ?? '')?.classList.remove('jp-mod-selected');
    this._selected = taskId;
    this._rows.get(taskId)?.classList.add('jp-mod-selected');
    this.loadLog(taskId);
  }

  private loadLog(taskId: string): void {
    const pre = el('pre', { cls: 'jp-Workflows-logText', attrs: { 'data-testid': 'task-log' } });
    this._logText = pre;
    this._log.replaceChildren(
      el('h3', { cls: 'jp-Workflows-heading', text: `Log: ${taskId}` }),
      pre
    );
    pre.textContent = 'Loading…';
    taskLog(this.executionId, taskId)
      .then(log => {
        if (this._logText !== pre) {
          return; // another task was selected meanwhile
        }
        pre.textContent = '';
        for (const line of log.lines) {
          this.appendLine(pre, line.stream, line.text);
        }
        if (!log.lines.length) {
          pre.textContent = '(no output)';
        }
      })
      .catch(error => {
        pre.textContent = `Cannot load the log: ${errorMessage(error)}`;
        Notification.error(`Log of task ${taskId}: ${errorMessage(error)}`, { autoClose: 8000 });
      });
  }

  private appendLog(taskId: string, stream: string, text: string): void {
    if (taskId === this._selected && this._logText) {
      if (this._logText.textContent === '(no output)') {
        this._logText.textContent = '';
      }
      this.appendLine(this._logText, stream, text);
    }
  }

  private appendLine(pre: HTMLElement, stream: string, text: string): void {
    pre.append(
      el('span', {
        cls: `jp-Workflows-${stream === 'stderr' ? 'stderr' : 'stdout'}`,
        text: `${text}\n`
      })
    );
  }

  private cancel(node: HTMLButtonElement): void {
    const id = this.executionId;
    this._cancelling = true;
    node.disabled = true;
    node.textContent = 'Cancelling…';
    cancelRun(id)
      .then(outcome => {
        if (outcome.cancelled) {
          const by = outcome.cancelled_by ? ` by ${outcome.cancelled_by}` : '';
          Notification.success(`Execution ${id} cancelled${by}`, { autoClose: 4000 });
        } else {
          Notification.info(`Cancel of ${id} requested: its runner is stopping it…`, {
            autoClose: 5000
          });
        }
      })
      .catch(error =>
        Notification.error(`Cancel ${id}: ${errorMessage(error)}`, { autoClose: 8000 })
      )
      .finally(() => {
        this._cancelling = false;
        // Show how it ended now (a run of another process has no live stream to say so).
        getExecution(id)
          .then(execution => this.showExecution(execution))
          .catch(error => this.fail(error));
      });
  }

  /** Start a run resuming this one and show it: what succeeded here is not run again. */
  private resume(): void {
    resumeRun(this.executionId)
      .then(started => this.host.showExecution(started.execution_id))
      .catch(error =>
        Notification.error(`Resume ${this.executionId}: ${errorMessage(error)}`, {
          autoClose: 8000
        })
      );
  }

  private _header: HTMLDivElement;
  private _tasks: HTMLDivElement;
  private _log: HTMLDivElement;
  private _logText: HTMLElement | null = null;
  private _summary: HTMLSpanElement;
  private _rows = new Map<string, HTMLDivElement>();
  private _states = new Map<string, string>();
  private _selected: string | null = null;
  private _follower: ExecutionFollower | null = null;
  private _endReported = false;
  private _cancelling = false;
  private _disposed = false;
}

/** "attempt 2: succeeded on tcp://10.0.0.8:40555 (error)": one attempt, for a tooltip. */
function attemptLine(attempt: IAttempt): string {
  const on = attempt.worker || attempt.host;
  return (
    `attempt ${attempt.number}: ${attempt.status}${on ? ` on ${on}` : ''}` +
    (attempt.error ? ` (${attempt.error})` : '')
  );
}

/** The worker and the machine of a task's last attempt: "tcp://10.0.0.7:40123 (node-7)". */
function placedOn(task: ITask): string {
  const last = task.attempts[task.attempts.length - 1];
  if (!last || !last.worker) {
    return task.where ?? '';
  }
  return last.host ? `${last.worker} (${last.host})` : last.worker;
}

/** A link to a cluster's dashboard, opened in a new browser tab. */
function dashboardLink(url: string): HTMLAnchorElement {
  return el('a', {
    cls: 'jp-Workflows-link',
    text: url,
    title: 'Open the cluster\'s dashboard',
    attrs: {
      href: url,
      target: '_blank',
      rel: 'noopener noreferrer',
      'data-testid': 'dashboard'
    }
  });
}

/** Where a running task is: its latest step ("3/12") when it reports steps (notebook cells,
 * data processor files); the step's label goes in the title. */
function progressText(task: ITask): string {
  const progress = task.progress;
  if (!progress) {
    return '…';
  }
  return progress.total ? `${progress.step}/${progress.total}` : `step ${progress.step}`;
}

/** Tasks in display order: each composite's children right after it, depth first. */
function nested(tasks: ITask[]): ITask[] {
  const ids = new Set(tasks.map(task => task.id));
  const children = new Map<string | null, ITask[]>();
  for (const task of tasks) {
    const parent = task.parent !== null && ids.has(task.parent) ? task.parent : null;
    const siblings = children.get(parent) ?? [];
    siblings.push(task);
    children.set(parent, siblings);
  }
  const ordered: ITask[] = [];
  const seen = new Set<string>();
  const visit = (parent: string | null) => {
    for (const task of children.get(parent) ?? []) {
      if (!seen.has(task.id)) {
        seen.add(task.id);
        ordered.push(task);
        visit(task.id);
      }
    }
  };
  visit(null);
  // Tasks under a parent cycle (the engine makes none) are not reached: show them last.
  return [...ordered, ...tasks.filter(task => !seen.has(task.id))];
}
