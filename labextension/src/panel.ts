/**
 * The Workflows side panel: the workflows of the server's root with validate and run
 * buttons, the executions (paged), and the detail of one execution.
 *
 * Plain Lumino widget and DOM: the lists are redrawn from the API's answers, a page at a
 * time (100 rows), so a history of thousands of runs costs what one page costs.
 */
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import {
  ApiError,
  IExecutionRow,
  IProblem,
  IWorkflowSummary,
  TERMINAL,
  changesUrl,
  listExecutions,
  listWorkflows,
  startRun,
  validateWorkflow
} from './api';
import { ExecutionView } from './detail';
import {
  button,
  clickable,
  el,
  errorMessage,
  formatDuration,
  formatTime,
  formatTimestamp,
  parameterValue,
  problemPlace,
  statusBadge
} from './format';

/** Opens a file of the server's root, at a 1-based line and column when given. */
export type OpenPath = (path: string, line?: number | null, column?: number | null) => void;

export const PAGE_SIZE = 100;
/** The most rows the server gives in one answer (server/executions.py MAX_LIMIT). */
const MAX_PAGE = 1000;
/** While listed runs are still running, the first page is reloaded this often. */
const LIST_REFRESH_MS = 3000;
/** Changes announced by the event stream within this many ms cost one reload. */
const CHANGE_DEBOUNCE_MS = 300;

export class WorkflowsPanel extends Widget {
  constructor(private readonly openPath: OpenPath) {
    super();
    this.id = 'jupyter-workflows-panel';
    this.addClass('jp-Workflows');
    this.title.caption = 'Workflows';
    this._home = el('div', { cls: 'jp-Workflows-home' });
    this._workflows = el('div', {
      cls: 'jp-Workflows-workflows',
      attrs: { 'data-testid': 'workflow-list' }
    });
    this._executions = el('div', {
      cls: 'jp-Workflows-executions',
      attrs: { 'data-testid': 'execution-list' }
    });
    this._total = el('span', {
      cls: 'jp-Workflows-total',
      attrs: { 'data-testid': 'execution-total' }
    });
    this._more = button('More', () => void this.loadMore(), { testid: 'more-executions' });
    this._status = el('select', {
      cls: 'jp-Workflows-filter',
      title: 'Show executions with this status'
    });
    const statuses = ['', 'pending', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled'];
    for (const value of [...statuses, 'skipped', 'crashed']) {
      this._status.append(el('option', { text: value || 'any status', attrs: { value } }));
    }
    this._status.addEventListener('change', () => {
      this._wanted = PAGE_SIZE; // another filter: start again from its first page
      void this.refreshExecutions();
    });
    this._home.append(
      el('div', { cls: 'jp-Workflows-section' }, [
        el('h2', { cls: 'jp-Workflows-heading', text: 'Workflows' }),
        button('⟳', () => void this.refresh(), { title: 'Reload', testid: 'refresh' })
      ]),
      this._workflows,
      el('div', { cls: 'jp-Workflows-section', attrs: { 'data-testid': 'executions-heading' } }, [
        el('h2', { cls: 'jp-Workflows-heading', text: 'Executions' }),
        this._total,
        this._status
      ]),
      this._executions,
      el('div', { cls: 'jp-Workflows-pager' }, [this._more])
    );
    this.node.append(this._home);
  }

  /** Reload the workflows and the first page of executions (the pages "More" added go: an
   * explicit reload starts the list over; the automatic ones keep them). */
  async refresh(): Promise<void> {
    this._wanted = PAGE_SIZE;
    await Promise.all([this.refreshWorkflows(), this.refreshExecutions()]);
  }

  /** Start a run of the workflow at `path` and show it live; errors reach the user. */
  async run(
    path: string,
    env?: Record<string, string>,
    params?: Record<string, unknown>
  ): Promise<string | null> {
    try {
      const started = await startRun(path, env, params);
      this.showExecution(started.execution_id, false);
      void this.refreshExecutions();
      return started.execution_id;
    } catch (error) {
      reportError(`Cannot run ${path}`, error);
      return null;
    }
  }

  /** Validate the workflow at `path` and show the problems under its row. */
  async validate(path: string): Promise<void> {
    try {
      const result = await validateWorkflow(path);
      // Looked up now: the list may have been redrawn while the server validated.
      const slot = this._workflows.querySelector<HTMLElement>(
        `[data-path="${CSS.escape(path)}"] .jp-Workflows-validation`
      );
      if (slot) {
        slot.replaceChildren(problemsView(result.ok, result.problems, this.openPath));
      } else {
        // The workflow is no longer listed: say it in a notification.
        const text = result.ok ? 'valid' : `${result.problems.length} problem(s)`;
        Notification.info(`${path}: ${text}`, { autoClose: 5000 });
      }
    } catch (error) {
      reportError(`Cannot validate ${path}`, error);
    }
  }

  /** Show one execution; `finished` skips the live stream for a run that already ended. */
  showExecution(id: string, finished: boolean): void {
    this._detail?.dispose();
    this._detail?.node.remove();
    const view = new ExecutionView(id, {
      openPath: path => this.openPath(path),
      back: () => this.showHome(),
      runEnded: () => void this.refresh(),
      showExecution: other => {
        this.showExecution(other, false);
        void this.refreshExecutions();
      }
    });
    this._detail = view;
    this._home.style.display = 'none';
    this.node.append(view.node);
    view.load(finished);
  }

  /** Back to the lists (and scroll the executions into view when asked). */
  showHome(scrollToExecutions = false): void {
    this._detail?.dispose();
    this._detail?.node.remove();
    this._detail = null;
    this._home.style.display = '';
    // The list was not refreshed while the detail was open: bring it (and its timer) back.
    void this.refreshExecutions();
    if (scrollToExecutions) {
      this._executions.scrollIntoView({ block: 'start' });
    }
  }

  /**
   * Ask for the workflow's env values and parameters (a form prefilled from its `${env.X}`
   * defaults and `${params.X}` references), then run it with them.
   */
  async runWithForm(workflow: IWorkflowSummary): Promise<string | null> {
    const form = runForm(workflow);
    const result = await showDialog({
      title: `Run ${workflow.name}`,
      body: new Widget({ node: form }),
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Run' })]
    });
    if (!result.button.accept) {
      return null;
    }
    const env: Record<string, string> = {};
    const params: Record<string, unknown> = {};
    for (const input of Array.from(form.querySelectorAll<HTMLInputElement>('input[data-kind]'))) {
      const name = input.dataset.name ?? '';
      if (input.dataset.kind === 'env') {
        env[name] = input.value;
      } else if (input.value !== '') {
        params[name] = parameterValue(input.value);
      }
    }
    return this.run(workflow.path, env, params);
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.refresh();
    this.listenForChanges();
  }

  protected onBeforeHide(msg: Message): void {
    super.onBeforeHide(msg);
    this.stopListRefresh();
    this.stopListening();
  }

  dispose(): void {
    this.stopListening();
    this.stopListRefresh();
    super.dispose();
  }

  /**
   * Reload the executions whenever the server says they changed: a run started here, by the
   * CLI, by cron or in a notebook. Without EventSource the timer refresh is all there is.
   */
  private listenForChanges(): void {
    if (this._changes || typeof EventSource === 'undefined') {
      return;
    }
    const source = new EventSource(changesUrl(), { withCredentials: true });
    source.addEventListener('executions', () => {
      if (this._changeTimer !== undefined) {
        return;
      }
      this._changeTimer = window.setTimeout(() => {
        this._changeTimer = undefined;
        if (this._detail === null) {
          void this.refreshExecutions();
        }
      }, CHANGE_DEBOUNCE_MS);
    });
    this._changes = source;
  }

  private stopListening(): void {
    this._changes?.close();
    this._changes = null;
    if (this._changeTimer !== undefined) {
      window.clearTimeout(this._changeTimer);
      this._changeTimer = undefined;
    }
  }

  private async refreshWorkflows(): Promise<void> {
    try {
      const workflows = await listWorkflows();
      this.renderWorkflows(workflows);
    } catch (error) {
      this._workflows.replaceChildren(
        el('div', {
          cls: 'jp-Workflows-error',
          text: `Cannot list workflows: ${errorMessage(error)}`
        })
      );
      Notification.error(`Cannot list workflows: ${errorMessage(error)}`, { autoClose: 8000 });
    }
  }

  private renderWorkflows(workflows: IWorkflowSummary[]): void {
    if (!workflows.length) {
      this._workflows.replaceChildren(
        el('div', {
          cls: 'jp-Workflows-empty',
          text: 'No workflows: add one under workflows/definitions/ or name it *.workflow.json.'
        })
      );
      return;
    }
    const fragment = document.createDocumentFragment();
    for (const workflow of workflows) {
      fragment.append(this.workflowRow(workflow));
    }
    this._workflows.replaceChildren(fragment);
  }

  private workflowRow(workflow: IWorkflowSummary): HTMLElement {
    const name = el('a', {
      cls: 'jp-Workflows-name jp-Workflows-link',
      text: workflow.name,
      // The whole name too: a narrow sidebar cuts it off.
      title: [workflow.name, workflow.path, workflow.description ?? ''].filter(Boolean).join('\n'),
      attrs: { href: '#' }
    });
    name.addEventListener('click', event => {
      event.preventDefault();
      this.openPath(workflow.path);
    });
    const last = statusBadge(workflow.last_status);
    if (workflow.last_execution_id) {
      const id = workflow.last_execution_id;
      last.classList.add('jp-Workflows-clickable');
      last.title = `Last run ${formatTimestamp(workflow.last_started_at)}: show it`;
      clickable(last, () => this.showExecution(id, TERMINAL.has(workflow.last_status ?? '')));
    }
    const problems = workflow.valid
      ? null
      : el('span', {
          cls: 'jp-Workflows-invalid',
          text: `${workflow.problems} problem${workflow.problems === 1 ? '' : 's'}`
        });
    return el(
      'div',
      {
        cls: 'jp-Workflows-workflow',
        attrs: { 'data-path': workflow.path, 'data-testid': 'workflow' }
      },
      [
        el('div', { cls: 'jp-Workflows-row jp-Workflows-workflowRow' }, [
          name,
          el('span', {
            cls: 'jp-Workflows-trigger',
            text: workflow.trigger ?? 'manual',
            title: `Trigger: ${workflow.trigger ?? 'manual'}`
          }),
          problems,
          last,
          el('span', { cls: 'jp-Workflows-actions' }, [
            button('Validate', () => void this.validate(workflow.path), { testid: 'validate' }),
            button('Run', () => void this.run(workflow.path), {
              cls: 'jp-Workflows-run',
              title: `Run ${workflow.name}`,
              testid: 'run'
            }),
            hasInputs(workflow)
              ? button('Run…', () => void this.runWithForm(workflow), {
                  title: 'Run with env values and parameters',
                  testid: 'run-with'
                })
              : null
          ])
        ]),
        el('div', { cls: 'jp-Workflows-validation' })
      ]
    );
  }

  private async refreshExecutions(): Promise<void> {
    // `_loaded` changes only once the new first page is in: if the request fails, the rows
    // shown and the count behind "More" still agree.
    await this.loadPage(true);
  }

  private async loadMore(): Promise<void> {
    await this.loadPage(false);
  }

  private async loadPage(replace: boolean): Promise<void> {
    const request = ++this._request;
    if (!replace) {
      this._wanted = this._loaded + PAGE_SIZE;
    }
    try {
      // A refresh (a run started or ended anywhere) reloads every page the user asked for:
      // it must neither fold the list back to its first page nor lose a "More" in flight.
      const page = await listExecutions({
        limit: replace ? Math.min(this._wanted, MAX_PAGE) : PAGE_SIZE,
        offset: replace ? 0 : this._loaded,
        status: this._status.value || undefined
      });
      if (request !== this._request) {
        return; // a newer load superseded this one
      }
      const fragment = document.createDocumentFragment();
      for (const row of page.executions) {
        fragment.append(this.executionRow(row));
      }
      if (replace) {
        this._executions.replaceChildren(fragment);
        this._loaded = page.executions.length;
      } else {
        this._executions.append(fragment);
        this._loaded += page.executions.length;
      }
      this._executions.setAttribute('data-count', String(this._loaded));
      this._total.textContent = `${this._loaded} of ${page.total}`;
      // The style, not the `hidden` attribute: jp-Button's display rule would override it.
      const more = this._loaded < page.total && page.executions.length > 0;
      this._more.style.display = more ? '' : 'none';
      if (!this._loaded) {
        this._executions.append(
          el('div', { cls: 'jp-Workflows-empty', text: 'No executions yet.' })
        );
      }
      this.scheduleListRefresh(page.executions.some(row => !TERMINAL.has(row.status)));
    } catch (error) {
      Notification.error(`Cannot list executions: ${errorMessage(error)}`, { autoClose: 8000 });
    }
  }

  private executionRow(row: IExecutionRow): HTMLElement {
    const node = el(
      'div',
      {
        cls: 'jp-Workflows-execution',
        title: [row.id, row.cancelled_by ? `cancelled by ${row.cancelled_by}` : '', row.error ?? '']
          .filter(Boolean)
          .join('\n'),
        attrs: {
          'data-execution-id': row.id,
          'data-status': row.status,
          'data-testid': 'execution'
        }
      },
      [
        statusBadge(row.status),
        el('span', { cls: 'jp-Workflows-name', text: row.workflow, title: row.workflow }),
        el('span', {
          cls: 'jp-Workflows-duration',
          text: TERMINAL.has(row.status) ? formatDuration(row.duration) : '…'
        }),
        el('span', {
          cls: 'jp-Workflows-time',
          text: formatTime(row.started_at),
          title: formatTimestamp(row.started_at)
        })
      ]
    );
    clickable(node, () => this.showExecution(row.id, TERMINAL.has(row.status)));
    return node;
  }

  /** Keep the first page fresh while runs are going on and the lists are on screen. */
  private scheduleListRefresh(running: boolean): void {
    this.stopListRefresh();
    if (running && this._loaded <= PAGE_SIZE && this.isVisible) {
      this._listTimer = window.setTimeout(() => {
        if (this._detail === null) {
          void this.refreshExecutions();
        }
      }, LIST_REFRESH_MS);
    }
  }

  private stopListRefresh(): void {
    if (this._listTimer !== undefined) {
      window.clearTimeout(this._listTimer);
      this._listTimer = undefined;
    }
  }

  private _home: HTMLDivElement;
  private _workflows: HTMLDivElement;
  private _executions: HTMLDivElement;
  private _total: HTMLSpanElement;
  private _more: HTMLButtonElement;
  private _status: HTMLSelectElement;
  private _detail: ExecutionView | null = null;
  private _loaded = 0;
  /** How many rows the user has asked to see ("More" adds a page). */
  private _wanted = PAGE_SIZE;
  private _request = 0;
  private _listTimer: number | undefined;
  private _changes: EventSource | null = null;
  private _changeTimer: number | undefined;
}

/** Whether the workflow reads any `${env.X}` or `${params.X}`: then "Run…" offers a form. */
function hasInputs(workflow: IWorkflowSummary): boolean {
  const inputs = workflow.inputs;
  return !!inputs && (Object.keys(inputs.env).length > 0 || inputs.params.length > 0);
}

/** The run form: one input per `${env.X}` (prefilled with its default) and `${params.X}`. */
function runForm(workflow: IWorkflowSummary): HTMLElement {
  const inputs = workflow.inputs ?? { env: {}, params: [] };
  const row = (kind: 'env' | 'params', name: string, value: string, hint: string) =>
    el('label', { cls: 'jp-Workflows-formRow', title: hint }, [
      el('span', { cls: 'jp-Workflows-formName', text: kind === 'env' ? `env.${name}` : name }),
      el('input', {
        cls: 'jp-mod-styled',
        attrs: {
          'data-kind': kind,
          'data-name': name,
          'data-testid': `input-${kind}-${name}`,
          value,
          placeholder: kind === 'env' ? '' : 'e.g. 5, 0.5, True, text'
        }
      })
    ]);
  const rows = [
    ...Object.entries(inputs.env).map(([name, value]) =>
      row('env', name, value, `\${env.${name}}: a text value`)
    ),
    ...inputs.params.map(name =>
      row('params', name, '', `\${params.${name}}: 5 is a number, True/False/None those values`)
    )
  ];
  return el('div', { cls: 'jp-Workflows-form', attrs: { 'data-testid': 'run-form' } }, [
    rows.length
      ? null
      : el('div', { text: 'This workflow reads no ${env.X} or ${params.X}: it runs as it is.' }),
    ...rows
  ]);
}

/** The problems of a validation as a list (or "valid"); a located one opens its file there. */
function problemsView(ok: boolean, problems: IProblem[], openPath: OpenPath): HTMLElement {
  if (ok) {
    return el('div', {
      cls: 'jp-Workflows-valid',
      text: '✓ valid',
      attrs: { 'data-testid': 'valid' }
    });
  }
  return el(
    'ul',
    { cls: 'jp-Workflows-problems', attrs: { 'data-testid': 'problems' } },
    problems.map(problem => {
      const item = el('li', {
        text: problemText(problem),
        attrs: { 'data-testid': 'problem', 'data-severity': problem.severity ?? 'error' }
      });
      const file = problem.file;
      if (file) {
        item.title = `Open ${file}${problem.line != null ? ` at line ${problem.line}` : ''}`;
        item.classList.add('jp-Workflows-clickable');
        clickable(item, () => openPath(file, problem.line, problem.column));
      }
      return item;
    })
  );
}

/** `file:line:col, task 'id', field: message`, as the CLI says it. */
export function problemText(problem: IProblem): string {
  const place = problemPlace(problem);
  return place ? `${place}: ${problem.message}` : problem.message;
}

/** Show a failed call in a dialog (with the workflow's problems when the server sent them). */
export function reportError(title: string, error: unknown): void {
  let message = errorMessage(error);
  if (error instanceof ApiError && error.problems.length) {
    message += '\n' + error.problems.map(p => `• ${problemText(p)}`).join('\n');
  }
  console.error(title, error);
  // A widget body keeps the line breaks (a string body would run the problems together).
  const body = new Widget({
    node: el('div', { cls: 'jp-Workflows-errorBody', text: message })
  });
  void showDialog({ title, body, buttons: [Dialog.okButton({ label: 'Dismiss' })] });
}
