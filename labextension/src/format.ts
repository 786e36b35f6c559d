/**
 * Small DOM and formatting helpers shared by the panel's views.
 */

/** Create an element with classes, text and attributes in one call. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  options: {
    cls?: string;
    text?: string;
    title?: string;
    attrs?: Record<string, string>;
  } = {},
  children: (Node | null | undefined)[] = []
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (options.cls) {
    node.className = options.cls;
  }
  if (options.text !== undefined) {
    node.textContent = options.text;
  }
  if (options.title) {
    node.title = options.title;
  }
  for (const [key, value] of Object.entries(options.attrs ?? {})) {
    node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child) {
      node.appendChild(child);
    }
  }
  return node;
}

/** A button that runs `action` on click and never lets the click reach its row. */
export function button(
  label: string,
  action: () => void,
  options: { cls?: string; title?: string; testid?: string } = {}
): HTMLButtonElement {
  const node = el('button', {
    cls: `jp-Workflows-button ${options.cls ?? ''}`,
    text: label,
    title: options.title,
    attrs: options.testid ? { 'data-testid': options.testid } : {}
  });
  node.type = 'button';
  node.addEventListener('click', event => {
    event.stopPropagation();
    action();
  });
  return node;
}

/** Make a row act like a button: click, or Enter / Space when focused. */
export function clickable(node: HTMLElement, action: () => void): void {
  node.tabIndex = 0;
  node.setAttribute('role', 'button');
  node.addEventListener('click', action);
  node.addEventListener('keydown', event => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      action();
    }
  });
}

/** A coloured badge for a run or task state (the colour comes from the CSS class). */
export function statusBadge(status: string | null | undefined): HTMLSpanElement {
  const value = status ?? 'never run';
  return el('span', {
    cls: `jp-Workflows-status jp-Workflows-status-${value.replace(/\s+/g, '-')}`,
    text: value.replace('_', ' '),
    attrs: { 'data-status': value }
  });
}

/** "850 ms", "12.3 s", "4 min 05 s", "2 h 03 min"; an em dash for unknown. */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || isNaN(seconds)) {
    return '—';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 60) {
    return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    const rest = Math.floor(seconds % 60);
    return `${minutes} min ${String(rest).padStart(2, '0')} s`;
  }
  const hours = Math.floor(minutes / 60);
  return `${hours} h ${String(minutes % 60).padStart(2, '0')} min`;
}

/** Local date and time of an epoch-seconds stamp, compact for the side panel. */
export function formatTime(epoch: number | null | undefined): string {
  if (epoch === null || epoch === undefined) {
    return '—';
  }
  const date = new Date(epoch * 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  const today = new Date();
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  if (date.toDateString() === today.toDateString()) {
    return time;
  }
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${time}`;
}

/** Full ISO-like timestamp for tooltips. */
export function formatTimestamp(epoch: number | null | undefined): string {
  return epoch === null || epoch === undefined ? '' : new Date(epoch * 1000).toLocaleString();
}

/** The message of anything thrown, for a notification. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}

/**
 * A run parameter typed as papermill (and `workflow run -p`) types it: `5` is a number,
 * `True`/`False`/`None` those values, anything else the text itself.
 */
export function parameterValue(text: string): unknown {
  const literals: Record<string, unknown> = { True: true, False: false, None: null };
  if (text in literals) {
    return literals[text];
  }
  if (/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(text.trim())) {
    return Number(text);
  }
  return text;
}

/** Where a validation problem is, as the CLI says it: `file:line:col, task 'id', field`. */
export function problemPlace(problem: {
  file?: string | null;
  line?: number | null;
  column?: number | null;
  task_id?: string | null;
  field?: string | null;
}): string {
  let where = problem.file ?? '';
  if (where && problem.line != null) {
    where += `:${problem.line}`;
    if (problem.column != null) {
      where += `:${problem.column}`;
    }
  }
  const field = problem.field ? `field '${problem.field}'` : '';
  const parts = [where, problem.task_id ? `task '${problem.task_id}'` : '', field];
  return parts.filter(Boolean).join(', ');
}
