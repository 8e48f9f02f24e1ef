// Everything around an engine run that touches the process: run directory, journal, lock, renderer,
// signals, prompts. The CLI calls these; the engine itself stays free of I/O policy.
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { AwsSettings } from './adapters/adapters.js';
import { Engine, type RunResult } from './engine/executor.js';
import type { Emit, EngineEvent, Lifecycle } from './engine/events.js';
import { CutoverError, ExitCode, InputError } from './errors.js';
import { Journal, operator, readJournal, verifyJournal, writeRunFile } from './journal/journal.js';
import { journalKey } from './journal/anchor.js';
import { acquireLocks, defaultLockDir } from './journal/lock.js';
import { renderKnown } from './runbook/template.js';
import { JOURNAL_VERSION } from './journal/records.js';
import { REDACTED, Redactor } from './journal/redact.js';
import { reconstruct, type RunState } from './journal/state.js';
import { loadRunbookText } from './runbook/load.js';
import { type PreparedRunbook, prepareRunbook } from './runbook/validate.js';
import { createRenderer, type Renderer } from './report/terminal.js';

export interface SessionOptions {
  runsDir: string;
  json?: boolean;
  yes?: boolean;
  vars?: Record<string, string>;
  aws?: AwsSettings;
  /** Extra subscribers (rehearsal load, tests). */
  onEvent?: Emit;
  /** Force plain or tty rendering (default: tty when stdout is a terminal). */
  render?: 'tty' | 'plain' | 'json' | 'silent';
  /** Serve the read-only status page on this port (`--status-port`; host defaults to 127.0.0.1). */
  status?: { port: number; host?: string };
  /** Lifecycle factory (hooks, notifications). */
  lifecycle?: (prepared: PreparedRunbook, warn: (m: string) => void) => Lifecycle | undefined;
}

export const RUNBOOK_COPY = 'runbook.yaml';
/** Where a run's output goes once its terminal is gone (SIGHUP, closed stdout). */
export const OUTPUT_LOG = 'output.log';

function interactive(): boolean {
  return !!process.stdin.isTTY && !!process.stdout.isTTY && !process.env.CI;
}

function newRunId(name: string): string {
  const ts = new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  // Two runs in the same second (a plan then a run, in one process) must not share a directory.
  return `${ts}-${name}-${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;
}

/**
 * What a run changes, as lock keys: each database server, each zone + record, each security group
 * and RDS instance/cluster its steps name. Values only known at run time (step outputs) cannot be
 * locked up front; a runbook that names no target is locked by its name.
 */
export function lockKeys(p: PreparedRunbook): string[] {
  const keys = new Set<string>();
  for (const d of Object.values(p.databases)) keys.add(`db-${d.host}:${d.port}`);
  const scope = { params: p.params, env: p.env, steps: {} };
  const known = (v: unknown): v is string => typeof v === 'string' && v !== '' && !v.includes('${');
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) {
      for (const x of v) walk(x);
      return;
    }
    if (!v || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    if (known(o.zoneId) && known(o.name))
      keys.add(`dns-${o.zoneId}-${o.name.toLowerCase().replace(/\.$/, '')}`);
    for (const g of [o.groupId, ...(Array.isArray(o.groupIds) ? o.groupIds : [])])
      if (known(g) && /^sg-/.test(g)) keys.add(`sg-${g}`);
    for (const k of ['instance', 'cluster'] as const) if (known(o[k])) keys.add(`rds-${k}-${o[k]}`);
    for (const x of Object.values(o)) walk(x);
  };
  for (const step of p.runbook.steps) walk(renderKnown((step as { with?: unknown }).with, scope));
  if (!keys.size) keys.add(`runbook-${p.runbook.name}`);
  return [...keys];
}

async function ask(renderer: Renderer, message: string, dflt: boolean): Promise<boolean> {
  renderer.pause();
  try {
    const confirm = await (await import('./util/confirm.js')).loadConfirm();
    return await confirm({ message, default: dflt });
  } catch {
    return false; // prompt closed (Ctrl-C at the prompt) = no
  } finally {
    renderer.resume();
  }
}

interface Prepared {
  prepared: PreparedRunbook;
  runDir: string;
  runId: string;
  state?: RunState;
}

function freshRun(
  file: string,
  mode: 'run' | 'plan',
  o: SessionOptions,
  prepared: PreparedRunbook,
): Prepared {
  const runId = newRunId(prepared.runbook.name);
  const runDir = resolve(o.runsDir, runId);
  // 0700/0600: a run's files (snapshots of cron files, outputs) are not for other local users.
  mkdirSync(resolve(o.runsDir), { recursive: true, mode: 0o700 });
  mkdirSync(runDir, { mode: 0o700 });
  // The run dir is self-contained: rollback works from it even if the runbook file moves or changes.
  writeRunFile(join(runDir, RUNBOOK_COPY), readFileSync(file, 'utf8'));
  writeRunFile(
    join(runDir, 'run.json'),
    `${JSON.stringify({ runId, mode, runbook: resolve(file) }, null, 2)}\n`,
  );
  return { prepared, runDir, runId };
}

/**
 * Acting on a journal means trusting its snapshots, outputs and runbook hash: one that does not
 * verify (chain and anchor) is refused before anything reads it.
 */
function refuseTampered(runDir: string, dir: string): void {
  if (!existsSync(join(dir, 'journal.jsonl'))) return; // readJournal says "no journal here"
  const v = verifyJournal(dir);
  if (!v.ok)
    throw new CutoverError(
      'JOURNAL_TAMPERED',
      `${runDir}/journal.jsonl:${v.badLine}: does not verify (${v.reason}); refusing to act on it. Check it with \`cutover log verify ${runDir}\` and undo by hand from a trusted record of the run`,
      { exitCode: ExitCode.badInput },
    );
}

/** Rebuilds a run's runbook from the copy in its directory, with the vars it was started with. */
export function reopenRun(
  runDir: string,
  o: { env?: Record<string, string | undefined>; envStrict?: boolean; vars?: Record<string, string> } = {},
): Prepared & { state: RunState } {
  const dir = resolve(runDir);
  refuseTampered(runDir, dir);
  const records = readJournal(dir);
  let state: RunState;
  try {
    state = reconstruct(records);
  } catch (e) {
    // JOURNAL_INCOMPLETE, or JOURNAL_VERSION (which says which cutover can read it): bad input.
    const code = e instanceof CutoverError ? e.code : 'JOURNAL_INCOMPLETE';
    throw new CutoverError(code, `${runDir}: ${(e as Error).message}`, { exitCode: ExitCode.badInput });
  }
  const copy = join(dir, RUNBOOK_COPY);
  if (!existsSync(copy))
    throw new InputError('NO_RUNBOOK_COPY', `${runDir}: ${RUNBOOK_COPY} is missing; cannot rebuild the run`);
  const text = readFileSync(copy, 'utf8');
  // Positions and relative env files refer to the original location.
  const loaded = loadRunbookText(state.runbookFile, text);
  if (loaded.sha256 !== state.runbookSha256)
    throw new InputError(
      'RUNBOOK_CHANGED',
      `${copy} does not match the journal's runbook hash; refusing to act on a changed runbook`,
    );
  const prepared = prepareRunbook(loaded, {
    vars: resumeVars(runDir, state.vars, o.vars ?? {}),
    envStrict: o.envStrict ?? true,
    ...(o.env ? { env: o.env } : {}),
  });
  return { prepared, runDir: dir, runId: state.runId, state };
}

/**
 * The run's own --var values, from its journal. Secrets were redacted there, so those (and only
 * those) must be passed again; changing any other value mid-run is refused.
 */
function resumeVars(
  runDir: string,
  journaled: Record<string, string>,
  given: Record<string, string>,
): Record<string, string> {
  const vars = { ...journaled };
  for (const [k, v] of Object.entries(given)) {
    if (k in journaled && !journaled[k]!.includes(REDACTED) && journaled[k] !== v)
      throw new InputError(
        'VAR_CHANGED',
        `${runDir} was started with --var ${k}=${journaled[k]}; a run continues with the values it started with`,
      );
    vars[k] = v;
  }
  const missing = Object.keys(vars).filter((k) => vars[k]!.includes(REDACTED));
  if (missing.length)
    throw new InputError(
      'SECRET_VAR_NEEDED',
      // --var-file, not --var: a value on the command line is on argv, readable by every local user.
      `${runDir} was started with secret parameter${missing.length > 1 ? 's' : ''} ${missing.join(', ')}, which the journal does not keep: pass ${missing.length > 1 ? 'them' : 'it'} again in a file only you can read (--var-file FILE, mode 0600, with ${missing.map((k) => `${k}=...`).join(', ')})`,
    );
  return vars;
}

export interface SessionResult extends RunResult {
  runDir: string;
  runId: string;
}

/** Runs the engine with journal, lock, renderer, signals and prompts wired in. */
export async function runSession(
  what: { mode: 'run' | 'plan'; file: string } | { mode: 'resume' | 'rollback'; runDir: string },
  o: SessionOptions,
): Promise<SessionResult> {
  // The journal key first: a host where it cannot be made refuses before any directory or lock exists.
  const key = journalKey({ create: true })!;
  let p: Prepared;
  if (what.mode === 'run' || what.mode === 'plan') {
    const { prepareRunbookFile } = await import('./runbook/validate.js');
    const prepared = prepareRunbookFile(what.file, { vars: o.vars ?? {}, envStrict: true });
    const { preflightDatabases } = await import('./preflight.js');
    await preflightDatabases(prepared);
    p = freshRun(what.file, what.mode, o, prepared);
  } else {
    const runDir = (what as { runDir: string }).runDir;
    p = reopenRun(runDir, { vars: o.vars ?? {} });
    const st = p.state!;
    if (st.mode === 'plan')
      throw new InputError('PLAN_RUN', `${runDir} is a plan (dry run); there is nothing to ${what.mode}`);
    if (what.mode === 'resume' && st.end && ['succeeded', 'rolled-back'].includes(st.end.status))
      throw new InputError('RUN_ENDED', `${runDir} already ended (${st.end.status}); nothing to resume`);
    // Resuming forward after undos began would redo undone steps and count a half-undone one as done.
    if (what.mode === 'resume' && st.rollbackStartedAt)
      throw new InputError(
        'ROLLBACK_STARTED',
        `${runDir}: a rollback of this run began at ${st.rollbackStartedAt}; it cannot be resumed forward. Finish it with \`cutover rollback ${runDir}\``,
      );
  }
  const { prepared, runDir, runId } = p;
  let status: import('./report/status-page.js').StatusServer | undefined;
  if (o.status) {
    try {
      status = await startStatus(
        o.status,
        prepared,
        what.mode,
        what.mode === 'run' || what.mode === 'plan' ? resolve(o.runsDir) : runsDirOf(runDir),
      );
    } catch (e) {
      if (what.mode === 'run') rmSync(runDir, { recursive: true, force: true });
      throw e;
    }
  }
  const redactor = new Redactor(prepared.secrets);
  const renderMode =
    o.render ?? (o.json ? 'json' : process.stdout.isTTY && !process.env.CI ? 'tty' : 'plain');
  let renderer = createRenderer(renderMode);
  const emit: Emit = (event: EngineEvent) => {
    // Every event is redacted here, whatever the engine already did: the terminal must never show a secret.
    const e = redactor.value(event);
    renderer.emit(e);
    status?.on(e);
    o.onEvent?.(e);
  };
  const live = what.mode !== 'plan';
  let release: () => void;
  try {
    release = live ? acquireLocks(defaultLockDir(), lockKeys(prepared), runDir) : () => {};
  } catch (e) {
    // Locked out before anything ran: leave no empty run directory behind.
    if (what.mode === 'run') rmSync(runDir, { recursive: true, force: true });
    throw e;
  }
  const journal = Journal.open(runDir, prepared.loaded.sha256, redactor, key);

  const abort = new AbortController();
  let interrupts = 0;
  // The operator's terminal went away: nobody can answer a prompt, and output must not kill the run.
  let terminalGone = false;
  let engineStarted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupts++;
    if (interrupts === 1) {
      emit({
        type: 'log',
        level: 'warn',
        message: `${sig}: stopping the current step safely, then rolling back${interactive() && !o.yes && !terminalGone ? ' (you will be asked first)' : ''}`,
      });
      abort.abort();
    } else {
      emit({
        type: 'log',
        level: 'warn',
        message: `${sig} again: the rollback in progress finishes its current undo; see \`cutover status ${runDir}\``,
      });
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // SSH drop (SIGHUP) or a reader that closed (`| head`: EPIPE on stdout): the run goes on, its
  // output to RUN_DIR/output.log, said once on stderr and in the journal — or, by the runbook's
  // `rollback: { onHangup: rollback }`, it rolls back as for SIGTERM. A dying terminal never ends
  // a run halfway with maintenance on.
  const outputLog = join(runDir, OUTPUT_LOG);
  const onHangup = prepared.runbook.rollback?.onHangup ?? 'continue';
  const loseTerminal = (cause: string) => {
    if (terminalGone) return;
    terminalGone = true;
    renderer.close();
    const toFile = { write: (text: string) => appendFileSync(outputLog, text, { mode: 0o600 }) };
    renderer = createRenderer(
      renderMode === 'json' ? 'json' : renderMode === 'silent' ? 'silent' : 'plain',
      toFile,
    );
    // Through the engine once it has read the journal, so its state holds the record too.
    if (engineStarted) engine.note('output-redirected', { cause, log: outputLog });
    else journal.append('output-redirected', { cause, log: outputLog });
    const what = onHangup === 'rollback' ? 'rolling back (runbook: rollback.onHangup)' : 'the run goes on';
    try {
      process.stderr.write(`cutover: ${cause}: ${what}; output continues in ${outputLog}\n`);
    } catch {
      // stderr may be gone with the terminal: the journal says it
    }
    emit({ type: 'log', level: 'warn', message: `${cause}: ${what}; output continues here` });
    if (onHangup === 'rollback') onSignal(cause === 'SIGHUP' ? 'SIGHUP' : 'SIGPIPE');
  };
  const onHup = () => loseTerminal('SIGHUP');
  const onOutError = (e: NodeJS.ErrnoException) => {
    // EPIPE: the reader closed; EIO: the pty is gone. Anything else is not ours to hide.
    if (e.code === 'EPIPE' || e.code === 'EIO' || e.code === 'ERR_STREAM_DESTROYED')
      loseTerminal(`${e.code} on output`);
    else throw e;
  };
  const onErrError = () => {
    // stderr gone too: nothing to report it on, and the run must not die of it.
  };
  process.on('SIGHUP', onHup);
  process.stdout.on('error', onOutError);
  process.stderr.on('error', onErrError);

  const tty = interactive() && renderMode !== 'json';
  const engine = new Engine({
    prepared,
    runId,
    runDir,
    mode: what.mode === 'plan' ? 'plan' : 'run',
    journal,
    redactor,
    emit,
    signal: abort.signal,
    yes: !!o.yes,
    ...(o.aws ? { aws: o.aws } : {}),
    ...(tty
      ? {
          // A gate nobody can answer any more is declined (the run rolls back), never left hanging.
          approve: (s) =>
            terminalGone
              ? Promise.resolve(false)
              : ask(renderer, `Run step "${s.id}" (${s.kind})${s.name ? ` — ${s.name}` : ''}?`, false),
        }
      : {}),
    ...(tty && !o.yes
      ? {
          // With the terminal gone nobody can answer: roll back as a non-interactive run does.
          // A prompt the hangup closed is not an operator's "no" (ask answers false then).
          confirmRollback: async (reason: string) =>
            terminalGone ||
            (await ask(renderer, `${reason}. Roll back the completed steps now?`, true)) ||
            terminalGone,
        }
      : {}),
    ...(o.lifecycle
      ? {
          lifecycle: o.lifecycle(prepared, (m) =>
            emit({ type: 'log', level: 'warn', message: redactor.text(m) }),
          ),
        }
      : {}),
    ...(what.mode === 'resume' ? { resume: p.state! } : {}),
  });

  try {
    if (what.mode === 'run' || what.mode === 'plan') {
      journal.append('run-start', {
        v: JOURNAL_VERSION,
        runId,
        mode: what.mode,
        runbook: { file: resolve(what.file), name: prepared.runbook.name, sha256: prepared.loaded.sha256 },
        vars: o.vars ?? {},
        operator: operator(),
        node: process.version,
        cwd: process.cwd(),
        budgetMs: prepared.budgetMs,
        steps: prepared.runbook.steps.map((s) => ({ id: s.id, kind: s.kind })),
      });
    }
    let result: RunResult;
    engineStarted = true;
    if (what.mode === 'rollback') {
      const st = p.state!;
      result = await engine.rollbackFromJournal(
        st,
        `rollback of ${basename(runDir)} requested by ${operator()}`,
      );
    } else {
      result = await engine.execute();
      // The most common surprise in the sandbox: a second run against a sandbox the first cut over.
      if (result.exitCode === ExitCode.failedRolledBack && p.prepared.env.SANDBOX_DIR)
        process.stderr.write(
          `hint: if an earlier run cut the sandbox over, \`cutover sandbox reset --dir ${p.prepared.env.SANDBOX_DIR}\` puts it back to its seed state\n`,
        );
    }
    return { ...result, runDir, runId };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onHup);
    process.stdout.off('error', onOutError);
    process.stderr.off('error', onErrError);
    // --json: the head, for publishing (`cutover log verify RUN_DIR --expect-head HASH` checks it).
    if (renderMode === 'json') {
      const h = journal.head();
      emit({ type: 'log', level: 'info', message: `journal head ${h.seq} ${h.hash}` });
    }
    renderer.close();
    journal.close();
    release();
    await status?.close();
  }
}

/** The status page, with the window predicted from earlier rehearsals for its maintenance clock. */
async function startStatus(
  o: { port: number; host?: string },
  prepared: PreparedRunbook,
  mode: string,
  runsDir: string,
): Promise<import('./report/status-page.js').StatusServer> {
  const { StatusServer } = await import('./report/status-page.js');
  let predicted: { lowMs: number; highMs: number } | undefined;
  try {
    const { predictFor } = await import('./rehearse/history.js');
    const p = predictFor(prepared, runsDir);
    if (p.rehearsals) predicted = { lowMs: p.lowMs, highMs: p.highMs };
  } catch {
    // no prediction: the page shows the budget alone
  }
  const server = new StatusServer({
    port: o.port,
    ...(o.host ? { host: o.host } : {}),
    runbook: prepared.runbook.name,
    mode,
    ...(predicted ? { predicted } : {}),
  });
  const url = await server.start();
  try {
    process.stderr.write(`status page: ${url} (read-only)\n`);
  } catch {
    // stderr gone: the page still serves
  }
  return server;
}

export function runsDirOf(runDir: string): string {
  // Run dirs live directly under the runs dir: the lock directory sits beside them.
  return dirname(resolve(runDir));
}
