// Shared by the end-to-end proofs of the seed cutover (issue 7): runbooks/sandbox.yaml run by the
// BUILT CLI against the test sandbox, with hooks that fail or hang on demand, SIGKILL of the whole
// process group, and journal reading. The runbook reads ../.sandbox/env, but the process environment
// wins over env files: every variable it uses comes from the test sandbox's env passed here, so a
// developer's own .sandbox/ is never read for anything that matters, and never written.
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { parse } from 'yaml';
import { expect } from 'vitest';
import type { SandboxEnv } from '../../../src/sandbox/index.js';
import { rootConnection } from '../../../src/sandbox/mariadb.js';
import { undoList } from '../../../src/engine/undo.js';
import { readJournal } from '../../../src/journal/journal.js';
import { reconstruct } from '../../../src/journal/state.js';
import type { Step } from '../../../src/runbook/schema.js';
import { getKind } from '../../../src/steps/registry.js';
import { assertBuilt, CLI, type CliResult, REPO, runCli, TEST_LOCK_DIR, waitFor } from '../../helpers/cli.js';
import { type JournalLine, onlyRunDir, readJournalLines } from '../../helpers/workspace.js';
import { rdsSandboxEnv, sandboxEnv } from '../../setup/sandbox-env.js';

export const RUNBOOK = join(REPO, 'runbooks', 'sandbox.yaml');
export const TEMPLATE = join(REPO, 'runbooks', 'rds-to-aurora.yaml');

/**
 * What a proof runs: a runbook against one of the test sandboxes. `self` is runbooks/sandbox.yaml on
 * the self-managed sandbox; `managed` is the production template itself, unmodified, on the
 * managed-platform sandbox with the vars file `sandbox up` wrote for it.
 */
export interface Target {
  name: string;
  runbook: string;
  env(): SandboxEnv;
  /** Extra arguments every run/rehearse/plan of this target takes. */
  args(env: SandboxEnv): string[];
}

export const SELF: Target = {
  name: 'runbooks/sandbox.yaml on the self-managed sandbox',
  runbook: RUNBOOK,
  env: () => sandboxEnv(),
  args: () => [],
};

export const MANAGED: Target = {
  name: 'runbooks/rds-to-aurora.yaml on the managed-platform sandbox',
  runbook: TEMPLATE,
  env: () => rdsSandboxEnv(),
  args: (env) => ['--var-file', join(env.SANDBOX_DIR, 'rds-to-aurora.vars')],
};

export interface RunbookStep {
  id: string;
  kind: string;
  rollback?: unknown;
}

/** The steps of the target's runbook, read from the file: the matrices cover whatever it holds. */
export function sandboxSteps(target: Target = SELF): RunbookStep[] {
  const doc = parse(readFileSync(target.runbook, 'utf8')) as { steps: RunbookStep[] };
  return doc.steps.map((s) => ({
    id: s.id,
    kind: s.kind,
    ...(s.rollback !== undefined ? { rollback: s.rollback } : {}),
  }));
}

/**
 * The environment variables runbooks/sandbox.yaml reads (${env.X} and { env: X } secrets) that
 * `env` does not provide: those would be filled from a developer's .sandbox/env. Must be none.
 */
export function envNotCovered(env: Record<string, string | undefined>, target: Target = SELF): string[] {
  if (target.runbook !== RUNBOOK) return []; // the template reads only the vars file's secrets file
  const text = readFileSync(RUNBOOK, 'utf8');
  const used = new Set([
    ...[...text.matchAll(/\$\{env\.([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1]!),
    ...[...text.matchAll(/\{\s*env:\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}/g)].map((m) => m[1]!),
  ]);
  if (used.size === 0)
    throw new Error(`${RUNBOOK}: no \${env.X} reference found; the pattern is out of date`);
  return [...used].filter((k) => env[k] === undefined || env[k] === '').sort();
}

/** Whether the engine puts a step on its rollback list (undoable: a write with an undo or a rollback override). */
export function undoable(step: RunbookStep): boolean {
  const kind = getKind(step.kind);
  if (!kind) throw new Error(`runbooks/sandbox.yaml: unknown kind ${step.kind}`);
  if (kind.readOnly) return false;
  return step.rollback !== undefined || !!kind.undo;
}

export function hasSnapshotUndo(step: RunbookStep): boolean {
  const kind = getKind(step.kind)!;
  return !!kind.snapshot && !!kind.undo;
}

// ---------------------------------------------------------------- temp dirs

const temps: string[] = [];

export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), `cutover-proof-${prefix}-`));
  temps.push(d);
  return d;
}

export function removeTemps(): void {
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** A hooks directory holding these cutover-on-<event> scripts (POSIX sh). */
export function hooksDir(scripts: Record<string, string> = {}): string {
  const d = tempDir('hooks');
  for (const [event, body] of Object.entries(scripts)) {
    const p = join(d, `cutover-on-${event}`);
    writeFileSync(p, `#!/bin/sh\n${body}\n`);
    chmodSync(p, 0o755);
  }
  return d;
}

/** An after-step hook that fails once the step `target` is done (and passes for every other step). */
export function failAfter(target: string): string {
  return hooksDir({
    'after-step': `if [ "$CUTOVER_STEP_ID" = "${target}" ]; then echo "injected failure after $CUTOVER_STEP_ID" >&2; exit 1; fi\nexit 0`,
  });
}

/**
 * A before-step hook that, for `target`, writes its pid to `marker` (atomically) and hangs: the step
 * has its step-start record and nothing else, the moment to pull the plug.
 */
export function hangBefore(target: string, marker: string): string {
  return hooksDir({
    'before-step': `if [ "$CUTOVER_STEP_ID" = "${target}" ]; then echo $$ > "${marker}.tmp" && mv "${marker}.tmp" "${marker}"; exec sleep 60; fi\nexit 0`,
  });
}

// ---------------------------------------------------------------- the CLI

export function cliEnv(env: SandboxEnv): Record<string, string> {
  // No hooks from a developer's shell; the test decides.
  return { ...env, CUTOVER_HOOKS_DIR: undefined } as unknown as Record<string, string>;
}

export function cli(env: SandboxEnv, args: string[], timeoutMs = 110_000): Promise<CliResult> {
  return runCli(args, { cwd: REPO, env: cliEnv(env), timeoutMs });
}

export function runArgs(runsDir: string, hooks?: string, target: Target = SELF, env?: SandboxEnv): string[] {
  return [
    'run',
    target.runbook,
    ...target.args(env ?? target.env()),
    '--execute',
    '--yes',
    '--plain',
    '--runs-dir',
    runsDir,
    ...(hooks ? ['--hooks-dir', hooks] : []),
  ];
}

export function show(r: CliResult): string {
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

export interface Detached {
  child: ChildProcess;
  pid: number;
  output(): string;
  exited(): boolean;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * The CLI in its own process group (detached), so the test can SIGKILL it and everything it
 * started with one kill(-pid), as when the operator's laptop dies.
 */
export function startDetached(env: SandboxEnv, args: string[]): Detached {
  assertBuilt();
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: REPO,
    env: {
      ...process.env,
      CI: '1',
      NO_COLOR: '1',
      FORCE_COLOR: '0',
      CUTOVER_DEBUG: undefined,
      CUTOVER_LOCK_DIR: TEST_LOCK_DIR,
      ...cliEnv(env),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  let exited = false;
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res, rej) => {
    child.on('error', rej);
    child.on('close', (code, signal) => {
      exited = true;
      res({ code, signal });
    });
  });
  if (child.pid === undefined) throw new Error('the CLI did not start');
  return { child, pid: child.pid, output: () => out, exited: () => exited, done };
}

/** SIGKILL a process group; gone already is fine. */
export function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits for `pred`, failing early (with the CLI's output) if the CLI exits first. */
export async function waitWhileRunning(run: Detached, pred: () => boolean, what: string, timeoutMs = 60_000) {
  try {
    await waitFor(() => pred() || run.exited(), what, timeoutMs, 20);
  } catch (e) {
    killGroup(run.pid);
    throw new Error(`${(e as Error).message}\n${run.output()}`);
  }
  if (!pred()) throw new Error(`the CLI exited before ${what}:\n${run.output()}`);
}

// ---------------------------------------------------------------- our own count of the rows

/** "run_id/writer:seq" of every row of a probe table, read as root: independent of the tool. */
export async function probeRows(socket: string, db: string, table: string): Promise<Set<string>> {
  const c = await rootConnection(socket);
  try {
    const [rows] = await c.query<RowDataPacket[]>(`SELECT run_id, writer, seq FROM \`${db}\`.\`${table}\``);
    return new Set(rows.map((r) => `${r.run_id}/${r.writer}:${r.seq}`));
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** The probe table's rows on old and on new, each read as root. */
export async function rowsOnBoth(
  env: SandboxEnv,
  table: string,
): Promise<{ onOld: Set<string>; onNew: Set<string> }> {
  const [onOld, onNew] = await Promise.all([
    probeRows(env.SANDBOX_OLD_DB_SOCKET, env.SANDBOX_DB_NAME, table),
    probeRows(env.SANDBOX_NEW_DB_SOCKET, env.SANDBOX_DB_NAME, table),
  ]);
  return { onOld, onNew };
}

/**
 * Nothing lost, nothing split: every acknowledged write ("run_id/writer:seq") is on the server that
 * ended up primary; when that is old (a rollback), no row exists only on new either. Returns the
 * rows, for a test's own log line.
 */
export async function expectWritesOn(
  env: SandboxEnv,
  table: string,
  primary: 'old' | 'new',
  acked: readonly string[],
): Promise<{ onOld: Set<string>; onNew: Set<string> }> {
  const rows = await rowsOnBoth(env, table);
  const on = primary === 'old' ? rows.onOld : rows.onNew;
  expect(
    acked.filter((a) => !on.has(a)),
    `acknowledged writes missing on ${primary}`,
  ).toEqual([]);
  if (primary === 'old')
    expect(
      [...rows.onNew].filter((a) => !rows.onOld.has(a)),
      'rows only on new',
    ).toEqual([]);
  return rows;
}

// ---------------------------------------------------------------- journal

export { onlyRunDir, readJournalLines, type JournalLine };

export function journalOf(runsDir: string): { runDir: string; lines: JournalLine[] } {
  const runDir = onlyRunDir(runsDir);
  return { runDir, lines: readJournalLines(runDir) };
}

export function journalHas(runsDir: string, pred: (l: JournalLine) => boolean): boolean {
  try {
    const runDir = onlyRunDir(runsDir);
    if (!existsSync(join(runDir, 'journal.jsonl'))) return false;
    // A line being written may be incomplete: parse only whole lines.
    const text = readFileSync(join(runDir, 'journal.jsonl'), 'utf8');
    const whole = text.slice(0, text.lastIndexOf('\n') + 1);
    return whole
      .split('\n')
      .filter(Boolean)
      .some((l) => pred(JSON.parse(l) as JournalLine));
  } catch {
    return false;
  }
}

export const idsOf = (lines: JournalLine[], ...types: string[]): string[] =>
  lines.filter((l) => types.includes(l.type)).map((l) => l.stepId ?? '-');

/**
 * The undo order the rollback must follow: the steps done (and a failed step whose snapshot was
 * taken, since it may have half-applied), newest first, keeping only those on the rollback list.
 */
export function expectedUndoOrder(lines: JournalLine[], steps: RunbookStep[]): string[] {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const touched = idsOf(lines, 'step-done');
  for (const l of lines)
    if (l.type === 'step-failed' && l.stepId) {
      const s = byId.get(l.stepId)!;
      const snapshotted = lines.some((x) => x.type === 'snapshot' && x.stepId === l.stepId);
      if ((snapshotted && hasSnapshotUndo(s)) || l.applied === true) touched.push(l.stepId);
    }
  return touched.reverse().filter((id) => undoable(byId.get(id)!));
}

/**
 * One rule (issue 12): each rollback's undo list, as the engine journaled it at rollback-start,
 * against what the pure rule (src/engine/undo.ts) computes from the journal before that record —
 * what `cutover rollback` would compute from the same journal. Returns both, per rollback.
 */
export function undoListsOf(runDir: string): { recorded: unknown[]; computed: unknown[] }[] {
  const records = readJournal(runDir);
  const steps = (parse(readFileSync(join(runDir, 'runbook.yaml'), 'utf8')) as { steps: Step[] }).steps;
  const out: { recorded: unknown[]; computed: unknown[] }[] = [];
  records.forEach((r, i) => {
    if (r.type !== 'rollback-start') return;
    const state = reconstruct(records.slice(0, i));
    out.push({
      recorded: (r as unknown as { undo: unknown[] }).undo,
      computed: undoList(state, steps, getKind).map(({ stepId, via }) => ({ stepId, via })),
    });
  });
  return out;
}
