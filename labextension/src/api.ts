/**
 * Typed client of the server extension's REST API (`{base_url}jupyter-workflows/api/`).
 *
 * Every call goes through `ServerConnection.makeRequest`, so it carries the token or the
 * XSRF cookie like any JupyterLab request. A non-2xx answer becomes an `ApiError` holding
 * the server's `message` (and `problems` for an invalid workflow) so the UI can show it.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export const API_NAMESPACE = 'jupyter-workflows/api';

export type Status =
  | 'pending'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'timed_out'
  | 'cancelled'
  | 'skipped'
  | 'crashed';

export const TERMINAL: ReadonlySet<string> = new Set([
  'succeeded',
  'failed',
  'timed_out',
  'cancelled',
  'skipped',
  'crashed'
]);

/** One validation problem, as `Problem.to_dict()` sends it: located like the CLI's. */
export interface IProblem {
  message: string;
  file?: string | null;
  /** 1-based line and column in `file`, when the problem has a place there. */
  line?: number | null;
  column?: number | null;
  /** The task it is about (`task_id` in the API). */
  task_id?: string | null;
  field?: string | null;
  severity?: string;
  [key: string]: unknown;
}

/** What a run of a workflow can be given: each `${env.X}` with its declared default, and
 * each `${params.X}` it references (the run form is prefilled from these). */
export interface IWorkflowInputs {
  env: Record<string, string>;
  params: string[];
}

export interface IWorkflowSummary {
  path: string;
  name: string;
  description: string | null;
  trigger: string | null;
  valid: boolean;
  problems: number;
  last_status: string | null;
  last_execution_id: string | null;
  last_started_at: number | null;
  /** Null for an invalid workflow (no form can be offered). */
  inputs?: IWorkflowInputs | null;
}

export interface IValidation {
  path: string;
  ok: boolean;
  problems: IProblem[];
}

export interface IRunStarted {
  execution_id: string;
  workflow: string;
}

export interface IExecutionRow {
  id: string;
  workflow: string;
  status: string;
  trigger: string | null;
  started_at: number | null;
  ended_at: number | null;
  duration: number | null;
  task_count?: number | null;
  error: string | null;
  /** Who asked a cancelled run to stop: `cli`, `lab`, `api`, `widget`...; else null. */
  cancelled_by?: string | null;
}

export interface IExecutionPage {
  executions: IExecutionRow[];
  total: number;
  limit: number;
  offset: number;
}

export interface IAttempt {
  number: number;
  status: string;
  started_at: number | null;
  ended_at: number | null;
  duration: number | null;
  exit_code: number | null;
  error: string | null;
  /** Where it ran: `local`, `dask`...; null when never placed (a composite, an old record). */
  executor?: string | null;
  /** The worker's address on a cluster (`tcp://10.0.0.7:40123`). */
  worker?: string | null;
  /** The machine its processes ran on. */
  host?: string | null;
}

/** The latest step a task reported (a notebook's cell, a data processor's file). */
export interface ITaskProgress {
  step: number;
  total: number | null;
  label: string | null;
  /** That step's own state: running, succeeded or failed. */
  status: string;
}

/**
 * One task as the server folded it (`TaskRecord.to_dict()` plus `log_tail`): the entries of
 * an execution's `tasks`, and what a `tasks` message of the event stream carries.
 */
export interface ITask {
  id: string;
  name: string | null;
  type: string;
  /** The composite task (parallel, loop, conditional) this one ran under. */
  parent: string | null;
  depends_on: string[];
  status: string;
  started_at: number | null;
  ended_at: number | null;
  duration: number | null;
  exit_code: number | null;
  result: unknown;
  outputs: Record<string, unknown>;
  error: string | null;
  attempts: IAttempt[];
  log_tail: string[];
  progress: ITaskProgress | null;
  /**
   * The worker (or machine) its last attempt ran on, when that was a cluster or not the
   * server's machine; null for a task that ran here.
   */
  where?: string | null;
  /**
   * Succeeded without running here: `resumed` (taken from the run resumed) or `cached` (a
   * cache hit); `reused_from` is the execution its result came from.
   */
  reused?: string | null;
  reused_from?: string | null;
}

/** The run's own fields: an execution without its tasks (a `run` message of the stream). */
export interface IRun {
  id: string;
  workflow: string;
  version?: string | null;
  status: string;
  file: string | null;
  trigger: string | null;
  started_at: number | null;
  ended_at: number | null;
  duration: number | null;
  error: string | null;
  /** Who asked a cancelled run to stop: `cli`, `lab`, `api`, `widget`...; else null. */
  cancelled_by?: string | null;
  /** `path`: the copy a click opens; `source`: the executed notebook in the store. */
  output_notebooks?: { task_id: string; path: string; source?: string }[];
  /** The execution this run resumed, if it did. */
  resumed_from?: string | null;
  /** Where its tasks run: `local`, or `dask` with the scheduler's address and dashboard. */
  executor?: string | null;
  cluster?: string | null;
  dashboard?: string | null;
}

export interface IExecution extends IRun {
  tasks: ITask[];
}

/** A line of a task's log as the event stream sends it (an `output` message). */
export interface IOutputLine {
  task_id: string;
  attempt: number;
  stream: string;
  line: string;
  at: number;
}

export interface ILogLine {
  stream: string;
  text: string;
  at: number | null;
}

export interface ITaskLog {
  task_id: string;
  lines: ILogLine[];
}

export interface IExecutionQuery {
  workflow?: string;
  status?: string;
  since?: string;
  limit?: number;
  offset?: number;
}

/** A failed API call: the HTTP status and the server's message (and problems, if any). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly problems: IProblem[] = []
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Call `endpoint` under the API namespace and return its JSON body. */
export async function requestAPI<T>(
  endpoint: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, endpoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ApiError(`cannot reach the Jupyter server: ${String(error)}`, 0);
  }
  const text = await response.text();
  let data: any = null;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const message =
      (data && typeof data.message === 'string' && data.message) ||
      `${response.status} ${response.statusText || 'error'} from ${endpoint}`;
    const problems = data && Array.isArray(data.problems) ? data.problems : [];
    throw new ApiError(message, response.status, problems);
  }
  return data as T;
}

function query(params: Record<string, string | number | undefined>): string {
  const parts = Object.entries(params)
    .filter(([, value]) => value !== undefined && value !== '')
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

function post(body: unknown): RequestInit {
  return {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json' }
  };
}

export async function listWorkflows(): Promise<IWorkflowSummary[]> {
  const data = await requestAPI<{ workflows: IWorkflowSummary[] }>('workflows');
  return data.workflows;
}

export function validateWorkflow(path: string): Promise<IValidation> {
  return requestAPI<IValidation>('validate', post({ path }));
}

export function startRun(
  path: string,
  env?: Record<string, string>,
  params?: Record<string, unknown>
): Promise<IRunStarted> {
  const body: Record<string, unknown> = { path };
  if (env && Object.keys(env).length) {
    body.env = env;
  }
  if (params && Object.keys(params).length) {
    body.params = params;
  }
  return requestAPI<IRunStarted>('runs', post(body));
}

/**
 * What a cancel came to once the server's wait was over: `cancelled` (recorded so, with who
 * asked), or still `running` (asked; it is stopping). A run that has ended, or whose runner
 * had died (recorded as crashed), is an `ApiError` (409) saying so.
 */
export interface ICancelOutcome {
  execution_id: string;
  cancelled: boolean;
  status: string;
  cancelled_by: string | null;
}

/** Cancel any running execution, whichever process runs it (through the store). */
export function cancelRun(id: string): Promise<ICancelOutcome> {
  return requestAPI<ICancelOutcome>(`executions/${encodeURIComponent(id)}/cancel`, post({}));
}

/** What a run resumed from another answers with. */
export interface IRunResumed extends IRunStarted {
  resumed_from: string;
}

/**
 * Start a run resuming execution `id`: what succeeded there is reused, the rest runs again;
 * `from` re-runs that task and everything downstream too, `only` runs just that task.
 */
export function resumeRun(
  id: string,
  options: { from?: string; only?: string } = {}
): Promise<IRunResumed> {
  return requestAPI<IRunResumed>(`executions/${encodeURIComponent(id)}/resume`, post(options));
}

export function listExecutions(options: IExecutionQuery = {}): Promise<IExecutionPage> {
  return requestAPI<IExecutionPage>(`executions${query({ ...options })}`);
}

export function getExecution(id: string, logs = 20): Promise<IExecution> {
  return requestAPI<IExecution>(`executions/${encodeURIComponent(id)}${query({ logs })}`);
}

export function taskLog(id: string, taskId: string, tail = 500): Promise<ITaskLog> {
  return requestAPI<ITaskLog>(
    `executions/${encodeURIComponent(id)}/tasks/${encodeURIComponent(taskId)}/log${query({ tail })}`
  );
}

/** Where JupyterLab can open a task's executed notebook (copied out of the hidden store). */
export interface IOpenableNotebook {
  execution_id: string;
  task_id: string;
  path: string;
  copied: boolean;
}

export function openableNotebook(id: string, taskId: string): Promise<IOpenableNotebook> {
  return requestAPI<IOpenableNotebook>(
    `executions/${encodeURIComponent(id)}/tasks/${encodeURIComponent(taskId)}/notebook`,
    { method: 'POST' }
  );
}

/**
 * The URL of an execution's event stream (`snapshot`, then `tasks`, `run` and `output`
 * messages: see `jupyter_workflows/server/events.py`). EventSource cannot send headers, so the
 * token goes in the query string when the page has one; without a token the cookie
 * authenticates.
 */
export function eventsUrl(id: string, settings?: ServerConnection.ISettings): string {
  return streamUrl(['executions', encodeURIComponent(id), 'events'], settings);
}

/**
 * The URL of the stream that says when the executions changed, whoever ran them (an
 * `executions` message each time: see `jupyter_workflows/server/changes.py`).
 */
export function changesUrl(settings?: ServerConnection.ISettings): string {
  return streamUrl(['events'], settings);
}

function streamUrl(
  parts: string[],
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): string {
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, ...parts);
  return settings.token ? `${url}?token=${encodeURIComponent(settings.token)}` : url;
}
