/**
 * Following one execution as it runs: server-sent events, or polling when they fail.
 *
 * The server folds the run's events (Python's `Execution.apply`, the one copy of that logic)
 * and streams the results: a `snapshot` (the execution's detail), then `tasks` (records that
 * replace the entries of those ids), `run` (the run's own fields) and `output` (a log line).
 * The follower keeps no state of its own beyond what it received, so the view can redraw only
 * the tasks a message carried. When the stream cannot be opened (a proxy that buffers, an old
 * server) it polls the detail endpoint every second until the run ends.
 */
import {
  ApiError,
  IExecution,
  IOutputLine,
  IRun,
  ITask,
  TERMINAL,
  eventsUrl,
  getExecution
} from './api';

const POLL_MS = 1000;
/** A run just submitted may not be recorded yet: 404s are tolerated this long. */
const NOT_YET_RECORDED_MS = 10000;

export interface IFollowerCallbacks {
  /** The whole execution changed (first snapshot, a poll, the final state). */
  onExecution(execution: IExecution): void;
  /** These tasks changed: their records are now in `execution.tasks` (new ones appended). */
  onTasks(execution: IExecution, tasks: ITask[]): void;
  /** The run-level fields changed (status, end, error). */
  onRun(execution: IExecution): void;
  /** A line of output arrived. */
  onOutput(line: IOutputLine): void;
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

  /** The execution as last received, once the first snapshot or poll arrived. */
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
    const on = (kind: string, handle: (data: any) => void) =>
      source.addEventListener(kind, event => handle(JSON.parse((event as MessageEvent).data)));
    on('snapshot', data => this.onSnapshot(data));
    on('tasks', data => this.onTasks(data));
    on('run', data => this.onRun(data));
    on('output', data => this.callbacks.onOutput(data));
    source.onerror = () => {
      // The server closes the stream once the run ended; EventSource calls that an error and
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

  private onSnapshot(execution: IExecution): void {
    this.received(execution);
    if (TERMINAL.has(execution.status)) {
      this.finish();
    }
  }

  private onTasks(tasks: ITask[]): void {
    const execution = this._execution;
    if (!execution) {
      return;
    }
    for (const task of tasks) {
      const index = this._index.get(task.id);
      if (index === undefined) {
        this._index.set(task.id, execution.tasks.length);
        execution.tasks.push(task);
      } else {
        execution.tasks[index] = task;
      }
    }
    this.callbacks.onTasks(execution, tasks);
  }

  private onRun(run: IRun): void {
    if (!this._execution) {
      return;
    }
    this._execution = { ...run, tasks: this._execution.tasks };
    this.callbacks.onRun(this._execution);
    if (TERMINAL.has(run.status)) {
      this.finish();
    }
  }

  /** A whole execution arrived: it is the state now. */
  private received(execution: IExecution): void {
    this._execution = execution;
    this._index = new Map(execution.tasks.map((task, index) => [task.id, index]));
    this.callbacks.onExecution(execution);
  }

  /** The run ended: stop following and fetch the final record (output notebooks, logs). */
  private finish(): void {
    if (this._ended) {
      return; // a terminal snapshot and the terminal run both say so
    }
    this._ended = true;
    this.closeSource();
    this.callbacks.onMode?.('ended');
    getExecution(this.executionId)
      .then(execution => {
        if (!this._disposed) {
          this.received(execution);
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
        this.received(execution);
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
  /** Where each task is in `_execution.tasks`, so a record replaces its entry at once. */
  private _index = new Map<string, number>();
  private _source: EventSource | null = null;
  private _timer: number | undefined;
  private _startedAt = 0;
  private _ended = false;
  private _disposed = false;
}
