// The live run widget's view (anywidget ESM, plain JS, no bundler).
//
// Draws the state RunWidget syncs: tasks laid out in columns by dependency depth (children
// stacked under their parent), each box coloured by state with elapsed time, retries and
// notebook cell progress; a click selects a task (sets `selected`, Python answers with its
// `log_tail`), a second click goes back to following the run. Redraws are coalesced: one
// per burst of changes, plus a 1 s tick that advances running tasks' clocks between pushes.

const BOX_W = 176;
const BOX_H = 38;
const ROW_GAP = 8;
const COL_GAP = 46; // between dependency depths (edges run here)
const SUB_GAP = 14; // between the wrapped sub-columns of one depth
const INDENT = 14; // per level of parent/child nesting
const MAX_ROWS = 10; // a taller column wraps into sub-columns
const PAD = 8;
const CHAR_W = 6.6; // average glyph width at 12px, to truncate names to their box

const LABELS = { timed_out: "timed out", resumed: "reused", cached: "cached" };

// A task that succeeded by reusing an earlier run's result shows as "reused" or "cached".
function shownState(t) {
  return t.reused || t.status;
}
const FAILURES = new Set(["failed", "timed_out", "cancelled", "crashed"]);

export function formatDuration(seconds) {
  if (seconds == null || !isFinite(seconds)) return "";
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const whole = Math.round(seconds);
  const minutes = Math.floor(whole / 60);
  if (minutes < 60) return `${minutes}m${String(whole % 60).padStart(2, "0")}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}

function esc(value) {
  return String(value ?? "").replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c],
  );
}

function clip(text, width) {
  const room = Math.max(4, Math.floor((width - 14) / CHAR_W));
  return text.length > room ? `${text.slice(0, room - 1)}…` : text;
}

// Positions of every task box: {boxes: Map(id -> {x, y, w, h, level}), width, height}.
export function layout(tasks) {
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const kids = new Map();
  const roots = [];
  for (const t of tasks) {
    if (t.parent && t.parent !== t.id && byId.has(t.parent)) {
      if (!kids.has(t.parent)) kids.set(t.parent, []);
      kids.get(t.parent).push(t);
    } else {
      roots.push(t);
    }
  }
  const rootIds = new Set(roots.map((t) => t.id));
  const depth = new Map();
  const depthOf = (t, trail) => {
    if (depth.has(t.id)) return depth.get(t.id);
    trail.add(t.id); // guards against a cycle, which validation forbids anyway
    let d = 0;
    for (const dep of t.depends_on || []) {
      if (rootIds.has(dep) && !trail.has(dep)) d = Math.max(d, depthOf(byId.get(dep), trail) + 1);
    }
    trail.delete(t.id);
    depth.set(t.id, d);
    return d;
  };
  const columns = [];
  for (const t of roots) {
    const d = depthOf(t, new Set());
    (columns[d] ||= []).push(t);
  }
  const group = (t, level, out, seen) => {
    if (seen.has(t.id)) return out;
    seen.add(t.id);
    out.push([t, level]);
    for (const kid of kids.get(t.id) || []) group(kid, level + 1, out, seen);
    return out;
  };
  const boxes = new Map();
  const seen = new Set();
  let x = PAD;
  let maxRows = 0;
  for (const column of columns) {
    if (!column) continue;
    let sub = 0;
    let row = 0;
    for (const root of column) {
      const items = group(root, 0, [], seen);
      if (row > 0 && row + items.length > MAX_ROWS) [sub, row] = [sub + 1, 0];
      for (const [t, level] of items) {
        if (row >= MAX_ROWS) [sub, row] = [sub + 1, 0];
        const indent = Math.min(level * INDENT, BOX_W - 90);
        boxes.set(t.id, {
          x: x + sub * (BOX_W + SUB_GAP) + indent,
          y: PAD + row * (BOX_H + ROW_GAP),
          w: BOX_W - indent,
          h: BOX_H,
          level,
        });
        row += 1;
        maxRows = Math.max(maxRows, row);
      }
    }
    x += (sub + 1) * (BOX_W + SUB_GAP) - SUB_GAP + COL_GAP;
  }
  return {
    boxes,
    width: Math.max(x - COL_GAP + PAD, 2 * PAD),
    height: Math.max(PAD * 2 + maxRows * (BOX_H + ROW_GAP) - ROW_GAP, 2 * PAD),
  };
}

function edgePath(a, b) {
  const y1 = a.y + a.h / 2;
  const y2 = b.y + b.h / 2;
  if (b.x > a.x + a.w) {
    const x1 = a.x + a.w;
    const mid = (x1 + b.x) / 2;
    return `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${b.x},${y2}`;
  }
  // Same column (siblings inside a parent): loop round the left side.
  return `M${a.x},${y1} C${a.x - 18},${y1} ${b.x - 18},${y2} ${b.x},${y2}`;
}

function taskMeta(t, drift) {
  let seconds = t.duration;
  if (t.status === "running" && seconds != null) seconds += drift;
  // A running notebook shows its cell where the state word would be: the blue box says it.
  const p = t.status === "running" && t.progress && t.progress.step != null ? t.progress : null;
  const state = shownState(t);
  const parts = [p ? (p.total ? `cell ${p.step}/${p.total}` : `cell ${p.step}`) : LABELS[state] || state];
  const took = formatDuration(seconds);
  if (took) parts.push(took);
  if (t.attempts > 1) parts.push(`↻${t.attempts}`);
  return parts.join(" · ");
}

function taskBox(t, box, shown, pinned, drift) {
  const classes = ["jw-task", `jw-s-${t.status}`];
  if (t.reused) classes.push("jw-reused");
  if (t.id === shown) classes.push("jw-shown");
  if (t.id === pinned) classes.push("jw-pinned");
  const tip = [`${t.id} (${t.type}): ${LABELS[shownState(t)] || shownState(t)}`];
  if (t.reused_from) tip.push(`result reused from execution ${t.reused_from}`);
  if (t.attempts > 1) tip.push(`${t.attempts} attempts`);
  if (t.where) tip.push(`on ${t.where}`);
  if (t.progress && t.progress.label) tip.push(t.progress.label);
  if (t.error) tip.push(t.error);
  const name = t.name && t.name !== t.id ? t.name : t.id;
  let bar = "";
  const p = t.progress;
  if (p && p.total && t.status === "running") {
    const part = Math.max(0, Math.min(1, p.step / p.total));
    bar = `<rect class="jw-bar" x="1" y="${box.h - 4}" width="${(box.w - 2) * part}" height="3"/>`;
  }
  return (
    `<g class="${classes.join(" ")}" data-id="${esc(t.id)}" transform="translate(${box.x},${box.y})">` +
    `<title>${esc(tip.join("\n"))}</title>` +
    `<rect class="jw-box" width="${box.w}" height="${box.h}" rx="5"/>${bar}` +
    `<text class="jw-name" x="8" y="15">${esc(clip(name, box.w))}</text>` +
    `<text class="jw-meta" x="8" y="30">${esc(clip(taskMeta(t, drift), box.w))}</text></g>`
  );
}

export function dagSvg(tasks, edges, lay, shown, pinned, drift) {
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="jw-svg" width="${lay.width}" ` +
      `height="${lay.height}" viewBox="0 0 ${lay.width} ${lay.height}">`,
    '<defs><marker id="jw-arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="6" ' +
      'markerHeight="6" orient="auto"><path d="M0,0 L8,4 L0,8 z"/></marker></defs><g class="jw-edges">',
  ];
  const status = new Map(tasks.map((t) => [t.id, t.status]));
  for (const [from, to] of edges) {
    const a = lay.boxes.get(from);
    const b = lay.boxes.get(to);
    if (!a || !b) continue;
    const done = status.get(from) === "succeeded" ? " jw-done" : "";
    parts.push(`<path class="jw-edge${done}" d="${edgePath(a, b)}" marker-end="url(#jw-arrow)"/>`);
  }
  parts.push("</g>");
  for (const t of tasks) {
    const box = lay.boxes.get(t.id);
    if (box) parts.push(taskBox(t, box, shown, pinned, drift));
  }
  parts.push("</svg>");
  return parts.join("");
}

// Where the run's tasks execute when not on this machine, with a link to the cluster's
// dashboard (only an http(s) address becomes a link).
function placementHtml(model) {
  const executor = model.get("executor");
  if (!executor) return "";
  const cluster = model.get("cluster");
  const dashboard = model.get("dashboard");
  let html = `<span class="jw-where">on ${esc(executor)}${cluster ? ` at ${esc(cluster)}` : ""}`;
  if (dashboard && /^https?:\/\//i.test(dashboard)) {
    html += ` · <a class="jw-dashboard" href="${esc(dashboard)}" target="_blank" rel="noopener noreferrer">dashboard</a>`;
  }
  return `${html}</span>`;
}

// "3/7 tasks done · about 40s left": the ETA is the usual run's length (from the workflow's
// history, else its expected_duration: `expected`, 0 when unknown) less the time elapsed.
export function progressText(tasks, status, elapsed, expected) {
  const done = tasks.filter((t) => t.status !== "pending" && t.status !== "running").length;
  let text = `${done}/${tasks.length} tasks done`;
  if (status === "running" && expected > 0) {
    text += elapsed < expected
      ? ` · about ${formatDuration(expected - elapsed)} left`
      : ` · longer than the usual ${formatDuration(expected)}`;
  }
  return text;
}

function headerHtml(model, tasks, drift) {
  const status = model.get("status") || "pending";
  const title = model.get("title") || model.get("workflow") || "workflow";
  const counts = new Map();
  for (const t of tasks) counts.set(shownState(t), (counts.get(shownState(t)) || 0) + 1);
  const chips = [...counts]
    .map(([s, n]) => `<span class="jw-chip jw-s-${esc(s)}"><i></i>${n} ${esc(LABELS[s] || s)}</span>`)
    .join("");
  const id = model.get("execution_id");
  const error = model.get("error");
  const note = model.get("cancel_note");
  // Cancel while it runs: Python asks the run's owner through the store, and says how it went.
  const cancel = status === "running" && id
    ? `<button class="jw-cancel" data-action="cancel" title="Stop this run and its processes">Cancel</button>`
    : "";
  return (
    `<span class="jw-title">${esc(title)}</span>` +
    `<span class="jw-pill jw-s-${esc(status)}">${esc(LABELS[status] || status)}</span>` +
    `<span class="jw-elapsed">${esc(formatDuration((model.get("elapsed") || 0) + drift))}</span>` +
    `<span class="jw-progress" title="ETA from the workflow's earlier runs">${esc(
      progressText(tasks, status, (model.get("elapsed") || 0) + drift, model.get("expected") || 0),
    )}</span>` +
    `<span class="jw-chips">${chips}</span>` +
    placementHtml(model) +
    (id ? `<span class="jw-id">execution ${esc(id)}</span>` : "") +
    cancel +
    (note ? `<span class="jw-cancel-note">${esc(note)}</span>` : "") +
    (error && FAILURES.has(status) ? `<div class="jw-run-error">${esc(error)}</div>` : "")
  );
}

function logHeadHtml(model, tasks) {
  const shown = model.get("log_task");
  const pinned = model.get("selected");
  if (!shown) return '<span class="jw-hint">output: click a task to see its output</span>';
  const task = tasks.find((t) => t.id === shown);
  const how = pinned === shown
    ? "pinned: click it again to follow the run"
    : "following the run: click a task to pin it";
  let html = `<span>output of <b>${esc(shown)}</b></span>`;
  if (task && task.where) {
    const ran = task.status === "running" ? "running on" : "ran on";
    html += ` <span class="jw-task-where">${ran} <code>${esc(task.where)}</code></span>`;
  }
  html += ` <span class="jw-hint">(${how})</span>`;
  if (task && task.error && task.status !== "succeeded") {
    html += `<div class="jw-task-error">${esc(LABELS[task.status] || task.status)}: ${esc(task.error)}</div>`;
  }
  return html;
}

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "jw-run";
  const header = document.createElement("div");
  header.className = "jw-header";
  const dag = document.createElement("div");
  dag.className = "jw-dag";
  const logHead = document.createElement("div");
  logHead.className = "jw-loghead";
  const log = document.createElement("pre");
  log.className = "jw-log";
  for (const part of [header, dag, logHead, log]) root.appendChild(part);
  el.appendChild(root);

  let receivedAt = Date.now();
  let layoutKey = null;
  let lay = null;
  let queued = false;

  const draw = () => {
    queued = false;
    const tasks = model.get("tasks") || [];
    const key = tasks.map((t) => `${t.id}<${t.parent || ""}<${(t.depends_on || []).join(",")}`).join("|");
    if (key !== layoutKey) [lay, layoutKey] = [layout(tasks), key];
    // Running clocks advance between pushes (Python sends elapsed-so-far at each push).
    const drift = model.get("status") === "running" ? (Date.now() - receivedAt) / 1000 : 0;
    const shown = model.get("log_task");
    header.innerHTML = headerHtml(model, tasks, drift);
    dag.innerHTML = tasks.length
      ? dagSvg(tasks, model.get("edges") || [], lay, shown, model.get("selected"), drift)
      : '<div class="jw-hint">waiting for the run to start</div>';
    logHead.innerHTML = logHeadHtml(model, tasks);
    const lines = model.get("log_tail") || [];
    log.textContent = lines.length ? lines.join("\n") : shown ? "(no output)" : "";
    log.scrollTop = log.scrollHeight;
  };
  const schedule = () => {
    if (!queued) {
      queued = true;
      setTimeout(draw, 0); // one redraw for all the keys of one state message
    }
  };
  const pushed = () => {
    receivedAt = Date.now();
    schedule();
  };
  const keys = ["tasks", "edges", "status", "error", "title", "workflow", "execution_id",
    "selected", "log_task", "log_tail", "executor", "cluster", "dashboard", "cancel_note",
    "expected"];
  model.on("change:elapsed", pushed);
  for (const key of keys) model.on(`change:${key}`, schedule);

  const onClick = (event) => {
    const target = event.target && event.target.closest ? event.target.closest("[data-id]") : null;
    if (!target) return;
    const id = target.getAttribute("data-id");
    model.set("selected", model.get("selected") === id ? "" : id);
    model.save_changes();
  };
  dag.addEventListener("click", onClick);
  const onCancel = (event) => {
    const button = event.target && event.target.closest ? event.target.closest("[data-action=cancel]") : null;
    if (!button) return;
    button.disabled = true;
    button.textContent = "Cancelling…";
    model.send({ type: "cancel" });
  };
  header.addEventListener("click", onCancel);
  const tick = setInterval(() => {
    if (model.get("status") === "running") draw();
  }, 1000);
  draw();

  return () => {
    clearInterval(tick);
    dag.removeEventListener("click", onClick);
    header.removeEventListener("click", onCancel);
    model.off("change:elapsed", pushed);
    for (const key of keys) model.off(`change:${key}`, schedule);
  };
}

export default { render };
