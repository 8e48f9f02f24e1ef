// `--status-port`: a read-only page for the people outside the terminal (customer service, comms):
// current step, the timeline so far, the maintenance clock against the budget and the predicted
// end, warnings, and the outcome. It is fed the session's events AFTER redaction, so it can show
// nothing the journal would not; it serves GET and HEAD only (anything else: 405), binds to
// loopback unless told otherwise, and pushes the whole state over server-sent events, so a browser
// that lost the connection is whole again on its first message after reconnecting.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EngineEvent } from '../engine/events.js';
import { InputError } from '../errors.js';
import type { JournalRecord } from '../journal/journal.js';

export interface StatusStep {
  id: string;
  kind: string;
  name?: string;
  state: string;
  startedAt?: number;
  durationMs?: number;
  note?: string;
  error?: string;
}

export interface StatusState {
  /** Server clock when sent: the page corrects its own clock with it. */
  now: number;
  runbook: string;
  mode: string;
  startedAt?: number;
  steps: StatusStep[];
  current?: { stepId: string; label?: string };
  timeline: { at: number; text: string; level?: 'info' | 'warn' | 'error' }[];
  maintenance?: { enteredAt?: number; exitedAt?: number; elapsedMs?: number; over?: boolean };
  budgetMs?: number;
  /** Predicted time in maintenance (ms), from rehearsals: the page shows entered + these. */
  predicted?: { lowMs: number; highMs: number };
  warnings: string[];
  end?: { status: string; exitCode: number; message: string; maintenanceMs?: number; durationMs: number };
}

export interface StatusServerOptions {
  port: number;
  host?: string;
  runbook: string;
  mode: string;
  predicted?: { lowMs: number; highMs: number };
}

const ACTIVE = new Set(['checking', 'running', 'verifying', 'retrying', 'rolling-back', 'awaiting-approval']);

export class StatusServer {
  private server: Server | undefined;
  private readonly clients = new Set<ServerResponse>();
  private readonly state: StatusState;
  private seq = 0;

  constructor(private readonly o: StatusServerOptions) {
    this.state = {
      now: Date.now(),
      runbook: o.runbook,
      mode: o.mode,
      steps: [],
      timeline: [],
      warnings: [],
      ...(o.predicted ? { predicted: o.predicted } : {}),
    };
  }

  /** Listens; a port already taken is bad input (nothing has run yet). */
  async start(): Promise<string> {
    const host = this.o.host ?? '127.0.0.1';
    const server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          new InputError(
            'STATUS_PORT',
            `--status-port ${this.o.port}: cannot listen on ${host}:${this.o.port} (${e.code ?? e.message})`,
          ),
        ),
      );
      server.listen(this.o.port, host, () => resolve());
    });
    this.server = server;
    const a = server.address() as AddressInfo;
    return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/`;
  }

  get url(): string | undefined {
    const a = this.server?.address() as AddressInfo | undefined;
    return a ? `http://${a.address}:${a.port}/` : undefined;
  }

  snapshot(): StatusState {
    return { ...this.state, now: Date.now() };
  }

  private note(text: string, level?: 'info' | 'warn' | 'error') {
    this.state.timeline.push({ at: this.at, text, ...(level && level !== 'info' ? { level } : {}) });
  }

  /** When the event being handled happened (now, or a journal record's time when replaying). */
  private at = Date.now();

  private step(id: string): StatusStep | undefined {
    return this.state.steps.find((s) => s.id === id);
  }

  /** Feed it the session's redacted events. */
  on = (e: EngineEvent, at = Date.now()): void => {
    this.at = at;
    const now = at;
    let push = true;
    switch (e.type) {
      case 'run-start':
        this.state.mode = e.resumed ? 'resume' : e.mode;
        this.state.startedAt = now;
        if (e.budgetMs !== undefined) this.state.budgetMs = e.budgetMs;
        this.state.steps = e.steps.map((s) => ({
          id: s.id,
          kind: s.kind,
          ...(s.name ? { name: s.name } : {}),
          state: 'pending',
        }));
        this.note(`${this.state.mode} started: ${e.steps.length} steps`);
        break;
      case 'step': {
        const s = this.step(e.stepId);
        if (!s) break;
        if (s.state === e.state && e.state !== 'done') push = false;
        if (!ACTIVE.has(s.state) && ACTIVE.has(e.state)) s.startedAt = now;
        s.state = e.state;
        if (e.durationMs !== undefined) s.durationMs = Math.round(e.durationMs);
        if (e.note) s.note = e.note;
        if (e.error) s.error = e.error.message;
        if (ACTIVE.has(e.state)) this.state.current = { stepId: e.stepId };
        else if (this.state.current?.stepId === e.stepId) delete this.state.current;
        if (
          ['done', 'failed', 'rolled-back', 'rollback-failed', 'skipped', 'awaiting-approval'].includes(
            e.state,
          )
        )
          this.note(
            `${e.stepId}: ${e.state}${e.durationMs !== undefined ? ` in ${(e.durationMs / 1000).toFixed(1)}s` : ''}${e.error ? ` — ${e.error.message}` : ''}`,
            e.state === 'failed' || e.state === 'rollback-failed' ? 'error' : undefined,
          );
        break;
      }
      case 'progress':
        if (this.state.current?.stepId === e.stepId) this.state.current.label = e.label;
        break;
      case 'log':
        if (e.level === 'info') {
          push = false;
          break;
        }
        this.state.warnings.push(`${e.stepId ? `${e.stepId}: ` : ''}${e.message}`);
        this.note(`${e.stepId ? `${e.stepId}: ` : ''}${e.message}`, e.level);
        break;
      case 'maintenance': {
        const m = this.state.maintenance ?? {};
        if (e.budgetMs !== undefined) this.state.budgetMs = e.budgetMs;
        if (e.state === 'entered') {
          this.state.maintenance = { enteredAt: now - e.elapsedMs };
          this.note('maintenance entered: customers see the maintenance page');
        } else if (e.state === 'exited') {
          this.state.maintenance = { ...m, exitedAt: now, elapsedMs: e.elapsedMs };
          if (m.enteredAt === undefined) this.state.maintenance.enteredAt = now - e.elapsedMs;
          this.note(`maintenance exited after ${(e.elapsedMs / 1000).toFixed(1)}s`);
        } else if (e.state === 'over-budget') {
          this.state.maintenance = { ...m, over: true };
          this.note('maintenance is over its budget', 'error');
        } else push = false; // ticks: the page runs its own clock
        break;
      }
      case 'point-of-no-return':
        this.note(`point of no return passed at ${e.stepId}`, 'warn');
        break;
      case 'rollback-start':
        this.note(`rolling back ${e.steps.length} step(s): ${e.reason}`, 'warn');
        break;
      case 'run-end':
        this.state.end = {
          status: e.status,
          exitCode: e.exitCode,
          message: e.message,
          durationMs: Math.round(e.durationMs),
          ...(e.maintenanceMs !== undefined ? { maintenanceMs: Math.round(e.maintenanceMs) } : {}),
        };
        delete this.state.current;
        this.note(`${e.status} (exit ${e.exitCode}): ${e.message}`, e.exitCode === 0 ? undefined : 'error');
        break;
      default:
        push = false;
    }
    if (push) this.broadcast();
  };

  private frame(): string {
    return `id: ${++this.seq}\nevent: state\ndata: ${JSON.stringify(this.snapshot())}\n\n`;
  }

  private broadcast() {
    if (!this.clients.size) return;
    const f = this.frame();
    for (const c of this.clients) c.write(f);
  }

  private handle(req: IncomingMessage, res: ServerResponse) {
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      // Read-only: nothing here changes the run.
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' });
      res.end('405 method not allowed: this page is read-only\n');
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/') {
      res.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Security-Policy':
          "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
      });
      res.end(req.method === 'HEAD' ? undefined : PAGE);
    } else if (path === '/state') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify(this.snapshot()));
    } else if (path === '/events') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', Connection: 'keep-alive' });
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      // retry: the browser reconnects after a second; the first frame is the whole state.
      res.write(`retry: 1000\n${this.frame()}`);
      this.clients.add(res);
      const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
      keepAlive.unref();
      req.on('close', () => {
        clearInterval(keepAlive);
        this.clients.delete(res);
      });
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('404 not found\n');
    }
  }

  /** Sends the final state, gives connected browsers a moment to read it, then closes. */
  async close(lingerMs = 1000): Promise<void> {
    if (!this.server) return;
    this.broadcast();
    if (this.clients.size && lingerMs > 0) await new Promise((r) => setTimeout(r, lingerMs).unref());
    for (const c of this.clients) c.end();
    this.clients.clear();
    const s = this.server;
    this.server = undefined;
    s.closeAllConnections?.();
    await new Promise<void>((r) => s.close(() => r()));
  }
}

type Rec = JournalRecord & Record<string, unknown>;

/** A journal record as the event the engine emitted for it (what the page needs of it). */
export function eventOf(r: Rec): EngineEvent | undefined {
  const id = r.stepId ?? '';
  const err = r.error as { code: string; message: string } | undefined;
  switch (r.type) {
    case 'run-start': {
      const rb = r.runbook as { name?: string } | undefined;
      return {
        type: 'run-start',
        runId: String(r.runId ?? ''),
        runDir: '',
        mode: r.mode === 'plan' ? 'plan' : 'run',
        runbook: rb?.name ?? '',
        steps: (r.steps as { id: string; kind: string }[]) ?? [],
        ...(typeof r.budgetMs === 'number' ? { budgetMs: r.budgetMs } : {}),
        resumed: false,
      };
    }
    case 'step-start':
      return { type: 'step', stepId: id, state: 'running' };
    case 'step-done':
      return { type: 'step', stepId: id, state: 'done', durationMs: Number(r.durationMs) };
    case 'step-failed':
      return {
        type: 'step',
        stepId: id,
        state: 'failed',
        durationMs: Number(r.durationMs),
        ...(err ? { error: { code: err.code, message: err.message } } : {}),
      };
    case 'gate':
      return r.decision === 'needs-approval'
        ? { type: 'step', stepId: id, state: 'awaiting-approval' }
        : undefined;
    case 'undo-start':
      return { type: 'step', stepId: id, state: 'rolling-back' };
    case 'undo-done':
      return { type: 'step', stepId: id, state: 'rolled-back', durationMs: Number(r.durationMs) };
    case 'undo-failed':
      return {
        type: 'step',
        stepId: id,
        state: 'rollback-failed',
        ...(err ? { error: { code: err.code, message: err.message } } : {}),
      };
    case 'warning':
      return { type: 'log', stepId: id, level: 'warn', message: String(r.message ?? '') };
    case 'maintenance':
      return {
        type: 'maintenance',
        state: r.state === 'exited' ? 'exited' : 'entered',
        elapsedMs: Number(r.elapsedMs ?? 0),
        ...(typeof r.budgetMs === 'number' ? { budgetMs: r.budgetMs } : {}),
      };
    case 'point-of-no-return':
      return { type: 'point-of-no-return', stepId: id };
    case 'rollback-start':
      return { type: 'rollback-start', reason: String(r.reason ?? ''), steps: (r.steps as string[]) ?? [] };
    case 'run-end':
      return {
        type: 'run-end',
        status: String(r.status) as Extract<EngineEvent, { type: 'run-end' }>['status'],
        exitCode: Number(r.exitCode),
        durationMs: Number(r.durationMs ?? 0),
        message: String(r.message ?? ''),
        leftovers: [],
        ...(typeof r.maintenanceMs === 'number' ? { maintenanceMs: r.maintenanceMs } : {}),
      };
    default:
      return undefined;
  }
}

/**
 * `cutover report RUN --serve`: the same page from the journal alone (already redacted), followed
 * while another process appends to it.
 */
export async function serveJournal(
  runDir: string,
  o: { port: number; host?: string },
): Promise<{ server: StatusServer; url: string; stop: () => Promise<void> }> {
  const { readJournal } = await import('../journal/journal.js');
  const first = readJournal(runDir) as Rec[];
  const start = first.find((r) => r.type === 'run-start');
  const server = new StatusServer({
    port: o.port,
    ...(o.host ? { host: o.host } : {}),
    runbook: (start?.runbook as { name?: string } | undefined)?.name ?? runDir,
    mode: String(start?.mode ?? 'run'),
  });
  let seen = 0;
  const follow = () => {
    let records: Rec[];
    try {
      records = readJournal(runDir) as Rec[];
    } catch {
      return; // a line being written: next time
    }
    for (const r of records.slice(seen)) {
      const e = eventOf(r);
      if (e) server.on(e, Date.parse(r.ts));
    }
    seen = records.length;
  };
  follow();
  const url = await server.start();
  const timer = setInterval(follow, 500);
  return {
    server,
    url,
    stop: async () => {
      clearInterval(timer);
      await server.close(0);
    },
  };
}

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>cutover status</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:14px 24px;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
header h1{font-size:18px;margin:0;font-weight:600}
.badge{border-radius:12px;padding:2px 10px;font-size:13px;background:#445}
.live{background:#1f7a3a}.lost{background:#b3261e}.ended{background:#445}
main{max-width:1000px;margin:0 auto;padding:18px 24px;display:grid;gap:16px}
section{background:#fff;border-radius:8px;padding:14px 18px;box-shadow:0 1px 2px #0002}
h2{font-size:14px;text-transform:uppercase;letter-spacing:.05em;color:#667;margin:0 0 8px}
#clock{font:600 40px/1.1 ui-monospace,monospace}
.bar{height:10px;background:#e4e6eb;border-radius:5px;overflow:hidden;margin:8px 0}
.bar div{height:100%;background:#d69e2e}.over .bar div{background:#b3261e}
table{border-collapse:collapse;width:100%}td{padding:4px 8px;border-top:1px solid #eee;vertical-align:top}
td.state{white-space:nowrap;font-weight:600}tr.done td.state{color:#1f7a3a}tr.failed td.state,tr.rollback-failed td.state{color:#b3261e}
tr.active{background:#fff8e1}.muted{color:#778}.warn{color:#9a6700}.error{color:#b3261e}
#outcome{font-size:18px;font-weight:600}#outcome.ok{color:#1f7a3a}#outcome.bad{color:#b3261e}
ol{margin:0;padding-left:36px;max-height:480px;overflow:auto}
</style></head><body>
<header><h1 id="title">cutover</h1><span id="mode" class="badge"></span><span id="conn" class="badge lost">connecting…</span></header>
<main>
<section id="outcome-box" hidden><h2>Outcome</h2><div id="outcome"></div><div id="outcome-msg" class="muted"></div></section>
<section><h2>Maintenance</h2><div id="mstate" class="muted">not entered yet</div><div id="clock">--:--.-</div>
<div id="mbar"><div class="bar"><div id="fill" style="width:0"></div></div></div>
<div id="mfacts" class="muted"></div></section>
<section><h2>Now</h2><div id="current" class="muted">waiting for the run</div></section>
<section><h2>Steps</h2><table><tbody id="steps"></tbody></table></section>
<section id="warn-box" hidden><h2>Warnings</h2><ul id="warnings"></ul></section>
<section><h2>Timeline</h2><ol id="timeline"></ol></section>
</main>
<script>
"use strict";
let st = null, offset = 0, es = null, retry = null;
const $ = (id) => document.getElementById(id);
const txt = (el, s) => { el.textContent = s; };
const hhmmss = (ms) => new Date(ms).toLocaleTimeString([], {hour12: false});
const clock = (ms) => { ms = Math.max(0, ms); const s = Math.floor(ms / 1000); return String(Math.floor(s / 60)).padStart(2, "0") + ":" + String(s % 60).padStart(2, "0") + "." + Math.floor((ms % 1000) / 100); };
const secs = (ms) => (ms / 1000).toFixed(1) + "s";
function conn(state) { const c = $("conn"); c.className = "badge " + state; txt(c, state === "live" ? "live" : state === "ended" ? "run ended" : "connection lost — reconnecting…"); }
function row(cells, cls) { const tr = document.createElement("tr"); if (cls) tr.className = cls; for (const [c, v] of cells) { const td = document.createElement("td"); td.className = c; td.textContent = v; tr.appendChild(td); } return tr; }
function render() {
  if (!st) return;
  txt($("title"), st.runbook); txt($("mode"), st.mode);
  const tb = $("steps"); tb.replaceChildren();
  const active = new Set(["checking","running","verifying","retrying","rolling-back","awaiting-approval"]);
  for (const s of st.steps) {
    const live = active.has(s.state) && s.startedAt ? " " + secs(Date.now() - offset - s.startedAt) : "";
    tb.appendChild(row([["state", s.state], ["id", s.id], ["name", s.name || s.kind], ["dur", s.durationMs != null ? secs(s.durationMs) : live], ["err", s.error || s.note || ""]], (active.has(s.state) ? "active " : "") + s.state));
  }
  const cur = st.current ? st.steps.find((s) => s.id === st.current.stepId) : null;
  txt($("current"), st.end ? "finished" : cur ? cur.id + " — " + cur.state + (st.current.label ? ": " + st.current.label : "") : "between steps");
  const w = $("warnings"); w.replaceChildren(); $("warn-box").hidden = !st.warnings.length;
  for (const m of st.warnings) { const li = document.createElement("li"); li.className = "warn"; li.textContent = m; w.appendChild(li); }
  const tl = $("timeline"); tl.replaceChildren();
  for (const t of st.timeline) { const li = document.createElement("li"); if (t.level) li.className = t.level; li.textContent = hhmmss(t.at + offset) + "  " + t.text; tl.appendChild(li); }
  tl.scrollTop = tl.scrollHeight;
  if (st.end) {
    $("outcome-box").hidden = false; const o = $("outcome");
    o.className = st.end.exitCode === 0 ? "ok" : "bad"; o.id = "outcome";
    txt(o, st.end.status + " (exit " + st.end.exitCode + ")" + (st.end.maintenanceMs != null ? " — maintenance " + secs(st.end.maintenanceMs) : ""));
    txt($("outcome-msg"), st.end.message);
  }
  tick();
}
function tick() {
  if (!st) return;
  const m = st.maintenance, now = Date.now() - offset;
  if (!m || m.enteredAt == null) { txt($("clock"), "--:--.-"); return; }
  const el = m.elapsedMs != null ? m.elapsedMs : now - m.enteredAt;
  txt($("clock"), clock(el));
  txt($("mstate"), m.exitedAt ? "exited: customers are served again" : "ON: customers see the maintenance page");
  const budget = st.budgetMs, over = m.over || (budget != null && el > budget);
  $("mbar").className = over ? "over" : "";
  $("fill").style.width = budget ? Math.min(100, (100 * el) / budget) + "%" : "0";
  const facts = [];
  facts.push("entered " + hhmmss(m.enteredAt + offset));
  if (budget != null) facts.push("budget " + clock(budget) + " (ends by " + hhmmss(m.enteredAt + budget + offset) + ")");
  if (st.predicted) facts.push("predicted end " + hhmmss(m.enteredAt + st.predicted.lowMs + offset) + "–" + hhmmss(m.enteredAt + st.predicted.highMs + offset));
  if (over) facts.push("OVER BUDGET");
  txt($("mfacts"), facts.join(" · "));
}
function connect() {
  if (es) es.close();
  es = new EventSource("events");
  es.addEventListener("state", (ev) => { st = JSON.parse(ev.data); offset = Date.now() - st.now; conn(st.end ? "ended" : "live"); render(); if (st.end) { es.close(); es = null; } });
  es.onerror = () => {
    if (st && st.end) return;
    conn("lost");
    // EventSource retries by itself while CONNECTING; once CLOSED, start over.
    if (es && es.readyState === EventSource.CLOSED && !retry) retry = setTimeout(() => { retry = null; connect(); }, 1000);
  };
}
window.addEventListener("online", () => { if (!st || !st.end) connect(); });
setInterval(() => { if (st && !st.end) render(); }, 200);
connect();
</script></body></html>
`;
