// Renderers subscribe to engine events. TTY: a live task list redrawn in place; plain: one line per
// change, for logs and CI; json: one event per line for scripts.
import { dirname, resolve } from 'node:path';
import pc from 'picocolors';
import type { EngineEvent, StepState } from '../engine/events.js';
import { formatMs } from '../errors.js';

export interface Renderer {
  emit(e: EngineEvent): void;
  /** Stop redrawing (while a prompt owns the terminal). */
  pause(): void;
  resume(): void;
  close(): void;
}

type Out = NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean; columns?: number };

const ICON: Record<StepState, string> = {
  pending: pc.dim('·'),
  'awaiting-approval': pc.yellow('?'),
  checking: pc.cyan('…'),
  running: pc.cyan('▶'),
  verifying: pc.cyan('✓?'),
  retrying: pc.yellow('↻'),
  done: pc.green('✔'),
  planned: pc.blue('◇'),
  failed: pc.red('✖'),
  skipped: pc.dim('↷'),
  'rolling-back': pc.magenta('↶'),
  'rolled-back': pc.magenta('↩'),
  'rollback-failed': pc.red('‼'),
};

interface Row {
  id: string;
  kind: string;
  state: StepState;
  started?: number;
  durationMs?: number;
  progress?: { label: string; deadline?: number };
  note?: string;
}

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

/** Terminal columns a line takes: escape sequences take none. */
export function visibleLength(line: string): number {
  return [...line.replace(ANSI, '')].length;
}

/**
 * Cuts a line to fit `width` terminal columns. A live line that wrapped would take two rows, and
 * the redraw, moving up one row per line, would leave the extra row behind on every frame. One
 * column stays free: some terminals wrap as soon as the last one is written.
 */
export function fitLine(line: string, width: number): string {
  const max = Math.max(2, width - 1);
  if (visibleLength(line) <= max) return line;
  let out = '';
  let cols = 0;
  // Escape sequences and characters, in order; keep max-1 characters and end on an ellipsis.
  for (const m of line.matchAll(/\x1b\[[0-9;?]*[A-Za-z]|[\s\S]/gu)) {
    if (m[0].startsWith('\x1b[')) out += m[0];
    else if (cols < max - 1) {
      out += m[0];
      cols++;
    }
  }
  return `${out.replace(/(\x1b\[[0-9;?]*[A-Za-z])*$/, '')}…\x1b[0m`;
}

/**
 * The run's last line: where it is, and the command that finds it again without its id (`--last`
 * looks in ./runs or $CUTOVER_RUNS_DIR; another runs dir is named).
 */
export function runDirLine(runDir: string): string {
  const runs = dirname(runDir);
  const dflt = process.env.CUTOVER_RUNS_DIR ?? './runs';
  const flag =
    resolve(runs) === resolve(dflt)
      ? ''
      : ` --runs-dir ${/^[\w./@%+=:,-]+$/.test(runs) ? runs : `'${runs.replace(/'/g, `'\\''`)}'`}`;
  return `run dir ${runDir} — see it again: cutover status --last${flag} · cutover report --last${flag} --format html -o report.html`;
}

function clock(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

export function createRenderer(
  mode: 'tty' | 'plain' | 'json' | 'silent',
  out: Out = process.stdout,
): Renderer {
  // silent: for embedding (benchmarks, rehearsal harnesses) where a subscriber reads the events.
  if (mode === 'silent') return { emit() {}, pause() {}, resume() {}, close() {} };
  if (mode === 'json')
    return { emit: (e) => out.write(`${JSON.stringify(e)}\n`), pause() {}, resume() {}, close() {} };
  return mode === 'tty' ? new TtyRenderer(out) : new PlainRenderer(out);
}

class PlainRenderer implements Renderer {
  private runDir = '';
  constructor(private readonly out: Out) {}
  private line(s: string) {
    this.out.write(`${new Date().toISOString().slice(11, 23)} ${s}\n`);
  }
  emit(e: EngineEvent): void {
    switch (e.type) {
      case 'run-start':
        this.runDir = e.runDir;
        this.line(
          `${e.mode === 'plan' ? 'plan' : e.mode === 'rollback' ? 'rollback' : e.resumed ? 'resume' : 'run'} ${e.runbook}: ${e.steps.length} steps, run dir ${e.runDir}${e.budgetMs ? `, maintenance budget ${formatMs(e.budgetMs)}` : ''}`,
        );
        break;
      case 'step':
        if (e.state === 'pending') return;
        this.line(
          `[${e.stepId}] ${e.state}${e.attempt && e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}${e.durationMs !== undefined ? ` in ${formatMs(e.durationMs)}` : ''}${e.note ? ` — ${e.note}` : ''}${e.error ? `: ${e.error.message}` : ''}`,
        );
        break;
      case 'log':
        this.line(
          `${e.stepId ? `[${e.stepId}] ` : ''}${e.level === 'info' ? '' : `${e.level}: `}${e.message}`,
        );
        break;
      case 'plan':
        for (const l of e.lines) this.line(`[${e.stepId}]   ${l}`);
        break;
      case 'progress':
        // Plain logs get no per-poll noise: only labels that change.
        if (this.lastProgress !== `${e.stepId}${e.label}`) {
          this.lastProgress = `${e.stepId}${e.label}`;
          this.line(
            `[${e.stepId}] … ${e.label}${e.deadline ? ` (deadline in ${formatMs(e.deadline - Date.now())})` : ''}`,
          );
        }
        break;
      case 'maintenance':
        if (e.state !== 'tick')
          this.line(
            `maintenance ${e.state} at ${clock(e.elapsedMs)}${e.budgetMs ? ` of ${clock(e.budgetMs)} budget` : ''}`,
          );
        break;
      case 'point-of-no-return':
        this.line(`point of no return passed at "${e.stepId}"`);
        break;
      case 'rollback-start':
        this.line(`rolling back ${e.steps.length} step(s): ${e.reason}`);
        break;
      case 'run-end':
        this.line(
          `${e.status} (exit ${e.exitCode}) in ${formatMs(e.durationMs)}${e.maintenanceMs !== undefined ? `, maintenance ${formatMs(e.maintenanceMs)}` : ''}: ${e.message}`,
        );
        for (const l of e.leftovers)
          this.line(
            `  needs a human: [${l.stepId}] ${l.kind}: ${l.problem}${l.change.length ? ` — ${l.change.join('; ')}` : ''}`,
          );
        if (this.runDir) this.line(runDirLine(this.runDir));
        break;
    }
  }
  private lastProgress = '';
  pause() {}
  resume() {}
  close() {}
}

class TtyRenderer implements Renderer {
  private rows: Row[] = [];
  private runDir = '';
  private header = '';
  private budgetMs: number | undefined;
  private maintenance: { since: number; elapsedMs?: number; over?: boolean } | undefined;
  private drawn = 0;
  private lastFrame: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private paused = false;
  private frame = 0;

  constructor(private readonly out: Out) {}

  private row(id: string): Row | undefined {
    return this.rows.find((r) => r.id === id);
  }

  /** Lines that stay (logs, plan lines, the summary) are printed above the live list. */
  private print(text: string) {
    this.clear();
    this.out.write(`${text}\n`);
    this.draw();
  }

  emit(e: EngineEvent): void {
    switch (e.type) {
      case 'run-start':
        this.rows = e.steps.map((s) => ({ id: s.id, kind: s.kind, state: 'pending' as StepState }));
        this.runDir = e.runDir;
        this.budgetMs = e.budgetMs;
        this.header = `${pc.bold(e.mode === 'plan' ? 'Plan' : e.mode === 'rollback' ? 'Rollback' : e.resumed ? 'Resume' : 'Run')} ${e.runbook} ${pc.dim(`→ ${e.runDir}`)}`;
        this.print(this.header);
        this.timer = setInterval(() => this.redraw(), 100);
        this.timer.unref();
        break;
      case 'step': {
        const r = this.row(e.stepId);
        if (!r) break;
        if (['checking', 'rolling-back'].includes(e.state)) r.started = Date.now();
        r.state = e.state;
        if (e.durationMs !== undefined) r.durationMs = e.durationMs;
        if (!['running', 'verifying', 'checking'].includes(e.state)) r.progress = undefined;
        r.note = e.note;
        if (e.error) this.print(`${pc.red('✖')} ${pc.bold(e.stepId)}: ${e.error.message}`);
        this.redraw();
        break;
      }
      case 'log':
        this.print(
          `${e.level === 'warn' ? pc.yellow('! ') : e.level === 'error' ? pc.red('✖ ') : pc.dim('· ')}${e.stepId ? `${pc.bold(e.stepId)}: ` : ''}${e.message}`,
        );
        break;
      case 'plan':
        this.print(`${pc.blue(e.stepId)}\n${e.lines.map((l) => `    ${l}`).join('\n')}`);
        break;
      case 'progress': {
        const r = this.row(e.stepId);
        if (r) r.progress = { label: e.label, ...(e.deadline ? { deadline: e.deadline } : {}) };
        break;
      }
      case 'maintenance':
        if (e.state === 'entered') this.maintenance = { since: Date.now() };
        else if (e.state === 'exited' && this.maintenance) this.maintenance.elapsedMs = e.elapsedMs;
        else if (e.state === 'over-budget' && this.maintenance) this.maintenance.over = true;
        break;
      case 'point-of-no-return':
        this.print(pc.yellow(`⚑ point of no return passed at ${e.stepId}`));
        break;
      case 'rollback-start':
        this.print(pc.magenta(`↶ rolling back ${e.steps.length} step(s): ${e.reason}`));
        break;
      case 'run-end': {
        if (this.timer) clearInterval(this.timer);
        this.redraw();
        this.drawn = 0; // keep the final list on screen
        this.lastFrame = [];
        const color = e.exitCode === 0 ? pc.green : e.exitCode === 1 ? pc.yellow : pc.red;
        const lines = [
          color(
            `${pc.bold(e.status)} (exit ${e.exitCode}) in ${formatMs(e.durationMs)}${e.maintenanceMs !== undefined ? `, maintenance ${formatMs(e.maintenanceMs)}${this.budgetMs ? ` of ${formatMs(this.budgetMs)} budget` : ''}` : ''}`,
          ),
          e.message,
        ];
        for (const l of e.leftovers)
          lines.push(
            pc.red(`  needs a human: [${l.stepId}] ${l.kind}: ${l.problem}`),
            ...l.change.map((c) => `      ${c}`),
          );
        if (this.runDir) lines.push(pc.dim(runDirLine(this.runDir)));
        this.out.write(`${lines.join('\n')}\n`);
        break;
      }
    }
  }

  private lines(): string[] {
    this.frame++;
    const spin = '⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏'[this.frame % 10]!;
    // Read on every frame: a resized terminal is followed on the next redraw.
    const width = (this.out as { columns?: number }).columns || 80;
    const out = this.rows.map((r) => {
      const active = ['checking', 'running', 'verifying', 'rolling-back', 'retrying'].includes(r.state);
      const icon = active ? pc.cyan(spin) : ICON[r.state];
      const t =
        r.durationMs !== undefined
          ? formatMs(r.durationMs)
          : active && r.started
            ? formatMs(Date.now() - r.started)
            : '';
      let line = `${icon} ${r.id.padEnd(22)} ${pc.dim(r.kind.padEnd(30))} ${t}`;
      if (active && r.progress)
        line += pc.dim(
          `  ${r.progress.label}${r.progress.deadline ? ` (${clock(r.progress.deadline - Date.now())} left)` : ''}`,
        );
      else if (r.note) line += pc.dim(`  ${r.note}`);
      return fitLine(line, width);
    });
    if (this.maintenance) {
      const ms = this.maintenance.elapsedMs ?? Date.now() - this.maintenance.since;
      const over = this.maintenance.over || (this.budgetMs !== undefined && ms > this.budgetMs);
      const text = `maintenance ${clock(ms)}${this.budgetMs ? ` / ${clock(this.budgetMs)} budget` : ''}${this.maintenance.elapsedMs !== undefined ? ' (exited)' : ''}`;
      out.push(fitLine(over ? pc.red(text) : pc.yellow(text), width));
    }
    return out;
  }

  private clear() {
    // After a narrower resize the terminal re-wraps what was drawn: count rows, not lines.
    const width = (this.out as { columns?: number }).columns || 80;
    const rows = this.lastFrame.reduce((n, l) => n + Math.max(1, Math.ceil(visibleLength(l) / width)), 0);
    const up = Math.max(this.drawn, rows);
    if (this.drawn > 0 && up > 0) this.out.write(`\x1b[${up}A\x1b[0J`);
    this.drawn = 0;
    this.lastFrame = [];
  }

  private draw() {
    if (this.paused || !this.rows.length) return;
    const lines = this.lines();
    this.out.write(`${lines.join('\n')}\n`);
    this.drawn = lines.length;
    this.lastFrame = lines;
  }

  private redraw() {
    if (this.paused) return;
    this.clear();
    this.draw();
  }

  pause() {
    this.clear();
    this.paused = true;
  }
  resume() {
    this.paused = false;
    this.draw();
  }
  close() {
    if (this.timer) clearInterval(this.timer);
  }
}
