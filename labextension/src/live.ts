/**
 * Following one execution as it runs: server-sent events, or polling when they fail.
 *
 * The server streams a `snapshot` (the execution's dict) and then each engine event; the
 * follower folds the events into its copy the same way the Python `Execution.apply` does, so
 * the view can redraw only the task an event touched. When the stream cannot be opened
 * (a proxy that buffers, an old server) it polls the detail endpoint every second until the
 * run ends.
 */
import { ApiError, IExecution, ITask, TERMINAL, eventsUrl, getExecution } from './api';

/** How many live output lines a task keeps in memory (the log endpoint has the rest). */
const LIVE_LOG_LINES = 500;
const POLL_MS = 1000;
/** A run just submitted may not be recorded yet: 404s are tolerated this long. */
const NOT_YET_RECORDED_MS = 10000;

export interface IFollowerCallbacks {
  /** The whole execution changed (first snapshot, a poll, the final state). */
  onExecution(execution: IExecution): void;
  /** One task changed (an event about it). */
  onTask(execution: IExecution, task: ITask): void;
  /** The run-level fields changed (status, end, error). */
  onRun(execution: IExecution): void;
  /** A line of output arrived for `taskId`. */
  onOutput(taskId: string, stream: string, text: string): void;
  /** Following failed for good (the execution is unknown, the server is gone). */
  onError(error: unknown): void;
  /** How the run is followed now: 'events' (the stream), 'polling', or 'ended'. */
  onMode?(mode: 'events' | 'polling' | 'ended'): void;
}

export class ExecutionFollower {
  constructor(
    readonly executionId: string,
    private readonly callbacks: IFollowerCallbacks
  ) {}

  /** The live copy of the execution, once the first snapshot or poll arrived. */
  get execution(): IExecution | null {
    return this._execution;
  }

  /** Open the event stream (or start polling when EventSource is missing). */
  start(): void {
    this._startedAt = Date.now();
    if (typeof EventSource === 'undefined') {
      this.startPolling();
      return;
    }
    const source = new EventSource(eventsUrl(this.executionId), {
      withCredentials: true
    });
    this._source = source;
    this.callbacks.onMode?.('events');
    source.addEventListener('snapshot', event => this.onSnapshot((event as MessageEvent).data));
    for (const kind of EVENT_KINDS) {
      source.addEventListener(kind, event => this.onEvent(kind, (event as MessageEvent).data));
    }
    source.onerror = () => {
      // The server closes the stream after run_ended; EventSource calls that an error and
      // would reconnect. Before the end it means the stream is unusable: poll instead.
      this.closeSource();
      if (!this._ended && !this._disposed) {
        this.startPolling();
      }
    };
  }

  private startPolling(): void {
    this.callbacks.onMode?.('polling');
    this.poll();
  }

  dispose(): void {
    this._disposed = true;
    this.closeSource();
    if (this._timer !== undefined) {
      window.clearTimeout(this._timer);
    }
  }

  private closeSource(): void {
    if (this._source) {
      this._source.onerror = null;
      this._source.close();
      this._source = null;
    }
  }

  private onSnapshot(data: string): void {
    const execution = JSON.parse(data) as IExecution;
    this._execution = execution;
    this.callbacks.onExecution(execution);
    if (TERMINAL.has(execution.status)) {
      this.finish();
    }
  }

  private onEvent(kind: string, data: string): void {
    const execution = this._execution;
    if (!execution) {
      return;
    }
    const event = JSON.parse(data) as Record<string, any>;
    if (kind === 'output') {
      const task = taskOf(execution, event.task_id);
      const tail = (task.log_tail ??= []);
      tail.push(event.line);
      if (tail.length > LIVE_LOG_LINES) {
        tail.splice(0, tail.length - LIVE_LOG_LINES);
      }
      this.callbacks.onOutput(task.id, event.stream, event.line);
      return;
    }
    if (kind === 'run_started' || kind === 'run_ended') {
      applyRunEvent(execution, kind, event);
      this.callbacks.onRun(execution);
      if (kind === 'run_ended') {
        this.finish();
      }
      return;
    }
    const task = applyTaskEvent(execution, kind, event);
    if (task) {
      this.callbacks.onTask(execution, task);
    }
  }

  /** The run ended: stop following and fetch the final record (output notebooks, logs). */
  private finish(): void {
    if (this._ended) {
      return; // a terminal snapshot and run_ended both say so
    }
    this._ended = true;
    this.closeSource();
    this.callbacks.onMode?.('ended');
    getExecution(this.executionId)
      .then(execution => {
        if (!this._disposed) {
          this._execution = execution;
          this.callbacks.onExecution(execution);
        }
      })
      .catch(error => {
        if (!this._disposed) {
          this.callbacks.onError(error);
        }
      });
  }

  private poll(): void {
    if (this._disposed) {
      return;
    }
    getExecution(this.executionId)
      .then(execution => {
        if (this._disposed) {
          return;
        }
        this._execution = execution;
        this.callbacks.onExecution(execution);
        if (TERMINAL.has(execution.status)) {
          this._ended = true;
          this.callbacks.onMode?.('ended');
        } else {
          this.schedulePoll();
        }
      })
      .catch(error => {
        if (this._disposed) {
          return;
        }
        const young = Date.now() - this._startedAt < NOT_YET_RECORDED_MS;
        if (error instanceof ApiError && error.status === 404 && young) {
          this.schedulePoll();
        } else {
          this.callbacks.onError(error);
        }
      });
  }

  private schedulePoll(): void {
    this._timer = window.setTimeout(() => this.poll(), POLL_MS);
  }

  private _execution: IExecution | null = null;
  private _source: EventSource | null = null;
  private _timer: number | undefined;
  private _startedAt = 0;
  private _ended = false;
  private _disposed = false;
}

const EVENT_KINDS = [
  'run_started',
  'task_started',
  'attempt_started',
  'output',
  'task_progress',
  'attempt_ended',
  'task_ended',
  'run_ended'
];

function taskOf(execution: IExecution, taskId: string): ITask {
  let task = execution.tasks.find(t => t.id === taskId);
  if (!task) {
    task = {
      id: taskId,
      name: null,
      type: 'shell',
      parent: null,
      depends_on: [],
      status: 'pending',
      started_at: null,
      ended_at: null,
      duration: null,
      exit_code: null,
      error: null,
      attempts: []
    };
    execution.tasks.push(task);
  }
  return task;
}

function applyRunEvent(execution: IExecution, kind: string, event: Record<string, any>): void {
  if (kind === 'run_started') {
    execution.status = 'running';
    execution.started_at = event.at;
    for (const spec of event.tasks ?? []) {
      const task = taskOf(execution, spec.id);
      task.name = spec.name ?? task.name;
      task.type = spec.type ?? task.type;
      task.parent = spec.parent ?? null;
      task.depends_on = spec.depends_on ?? [];
    }
  } else {
    execution.status = event.status;
    execution.ended_at = event.at;
    execution.error = event.error ?? null;
    if (execution.started_at !== null) {
      execution.duration = event.at - execution.started_at;
    }
  }
}

/** Fold a task-level event into the execution; returns the task it touched. */
export function applyTaskEvent(
  execution: IExecution,
  kind: string,
  event: Record<string, any>
): ITask | null {
  const task = taskOf(execution, event.task_id);
  switch (kind) {
    case 'task_started':
      task.status = 'running';
      task.started_at = event.at;
      task.name = event.name ?? task.name;
      task.type = event.type ?? task.type;
      break;
    case 'attempt_started':
      task.attempts.push({
        number: event.attempt,
        status: 'running',
        started_at: event.at,
        ended_at: null,
        duration: null,
        exit_code: null,
        error: null
      });
      break;
    case 'attempt_ended': {
      let attempt = task.attempts.find(a => a.number === event.attempt);
      if (!attempt) {
        attempt = {
          number: event.attempt,
          status: event.status,
          started_at: event.started_at,
          ended_at: null,
          duration: null,
          exit_code: null,
          error: null
        };
        task.attempts.push(attempt);
      }
      attempt.status = event.status;
      attempt.ended_at = event.at;
      attempt.duration = attempt.started_at !== null ? event.at - attempt.started_at : null;
      attempt.exit_code = event.exit_code ?? null;
      attempt.error = event.error ?? null;
      break;
    }
    case 'task_progress':
      task.progress = {
        step: event.step,
        total: event.total ?? null,
        label: event.label ?? null
      };
      break;
    case 'task_ended':
      task.status = event.status;
      task.started_at = event.started_at ?? task.started_at;
      task.ended_at = event.at;
      task.duration = task.started_at !== null ? event.at - task.started_at : null;
      task.exit_code = event.exit_code ?? null;
      task.error = event.error ?? null;
      task.name = event.name ?? task.name;
      break;
    default:
      return null;
  }
  return task;
}
