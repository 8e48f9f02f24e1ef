// Runs the BUILT CLI (`node bin/cutover.js`) as a user would: a real process, real exit code, real
// stdout/stderr. `npm run build` must have run first (`npm test` does it).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { threadId } from 'node:worker_threads';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = join(REPO, 'bin', 'cutover.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface CliOptions {
  cwd?: string;
  /** Added to a clean copy of process.env (CI=1 so nothing thinks it has a terminal). */
  env?: Record<string, string | undefined>;
  /** Kill with SIGKILL after this long (default 30 s); the result then has signal SIGKILL. */
  timeoutMs?: number;
  input?: string;
}

export function assertBuilt(): void {
  if (!existsSync(join(REPO, 'dist', 'cli.js')))
    throw new Error('dist/cli.js is missing: run `npm run build` first');
}

/**
 * Run locks live outside --runs-dir (per target, per user): the tests' runs lock in a directory of
 * this test process, so they never meet an operator's real runs or another checkout's tests.
 */
export const TEST_LOCK_DIR = join(tmpdir(), `cutover-test-locks-${process.pid}-${threadId}`);

function childEnv(extra: CliOptions['env'] = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CI: '1', NO_COLOR: '1', FORCE_COLOR: '0' };
  // A developer's shell settings must not leak into what the tests see.
  for (const k of ['CUTOVER_RUNS_DIR', 'CUTOVER_AWS_ENDPOINT', 'CUTOVER_DEBUG', 'CUTOVER_JOURNAL_KEY'])
    delete env[k];
  env.CUTOVER_LOCK_DIR = TEST_LOCK_DIR;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export interface RunningCli {
  child: ChildProcess;
  /** Output so far. */
  stdout(): string;
  stderr(): string;
  done: Promise<CliResult>;
}

/** Starts the CLI and returns at once; `done` resolves when it exits. */
export function startCli(args: string[], opts: CliOptions = {}): RunningCli {
  assertBuilt();
  const started = performance.now();
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: opts.cwd ?? process.cwd(),
    env: childEnv(opts.env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  if (opts.input !== undefined) child.stdin!.end(opts.input);
  else child.stdin!.end();
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
  const done = new Promise<CliResult>((res, rej) => {
    child.on('error', rej);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      res({ code, signal, stdout: out, stderr: err, durationMs: performance.now() - started });
    });
  });
  return { child, stdout: () => out, stderr: () => err, done };
}

export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return startCli(args, opts).done;
}

/** Polls until pred() is true; throws after timeoutMs. */
export async function waitFor(
  pred: () => boolean,
  what: string,
  timeoutMs = 15_000,
  intervalMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface KillOptions extends CliOptions {
  /** The CLI is signalled once this file exists (a step writes it while it is in flight)... */
  markerFile?: string;
  /** ...or once its output matches this. */
  outputMatches?: RegExp;
  signal?: NodeJS.Signals;
  /** Fail (instead of signalling) if the marker does not show up in time. */
  markerTimeoutMs?: number;
}

/**
 * Runs the CLI until a marker appears, then sends it a signal (SIGKILL by default: no cleanup,
 * as when the operator's laptop dies). Throws if the process ends before the marker shows up.
 */
export async function runCliUntil(args: string[], opts: KillOptions): Promise<CliResult> {
  const run = startCli(args, opts);
  let exited = false;
  void run.done.then(() => {
    exited = true;
  });
  const seen = () =>
    (opts.markerFile !== undefined && existsSync(opts.markerFile)) ||
    opts.outputMatches?.test(run.stdout() + run.stderr()) === true;
  try {
    await waitFor(
      () => seen() || exited,
      `marker ${opts.markerFile ?? opts.outputMatches}`,
      opts.markerTimeoutMs ?? 15_000,
    );
  } catch (e) {
    run.child.kill('SIGKILL');
    await run.done;
    throw e;
  }
  if (!seen()) {
    const r = await run.done;
    throw new Error(`the CLI exited (${r.code}) before the marker appeared:\n${r.stdout}\n${r.stderr}`);
  }
  run.child.kill(opts.signal ?? 'SIGKILL');
  return run.done;
}

/** Lines that look like a JavaScript stack frame. */
export function stackLines(text: string): string[] {
  return text.split('\n').filter((l) => /^\s+at /.test(l));
}
