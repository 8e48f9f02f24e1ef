// The run's lifecycle, as users see it: their own executables in the hooks directory, named
// cutover-on-<event> as gh-ost names its gh-ost-on-* hooks, and the runbook's webhook notifications.
// Hooks get the context as CUTOVER_* variables; a non-zero exit (or a timeout) throws, which fails
// the step for before-step / after-step. A missing hook is skipped. A plan reads only: hooks run in
// dry run only when asked (`plan --run-commands`, CUTOVER_DRY_RUN=1), since a CI job that plans a
// runbook pull request must not run the pull request's scripts; notifications are never sent in dry
// run (a plan must not tell a channel that a cutover started). A failing webhook only warns.
// A hook that another user could have written (world-writable, or owned by neither the operator nor
// root, or in a world-writable directory) is refused: it would run with the operator's rights.
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { httpRequest } from '../../adapters/http.js';
import { parseDuration } from '../../duration.js';
import { formatMs, StepError } from '../../errors.js';
import type { Lifecycle, LifecycleEvent, LifecycleInfo } from '../../engine/events.js';
import type { NotifyT } from '../../runbook/schema.js';
import { redact, secretValues, tail, urlHost } from './common.js';
import { postWebhook, type WebhookFormat } from './notify.js';

export interface LifecycleOptions {
  runbookDir: string;
  hooksDir?: string;
  notify?: NotifyT | NotifyT[];
  runbookName: string;
  warn: (message: string) => void;
  env: Record<string, string | undefined>;
  /** Longest a hook may run (default 60s, or CUTOVER_HOOK_TIMEOUT). */
  hookTimeoutMs?: number;
  /** Values never to send in a notification (the runbook's resolved secrets, e.g. prepared.secrets). */
  secrets?: readonly string[];
  /** Run hooks in dry run too (`plan --run-commands`); default: a plan runs none. */
  hooksInDryRun?: boolean;
}

/** Refuses a hook someone other than the operator (or root) could have changed. */
export function checkHookSafety(file: string, dir: string): void {
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  const st = statSync(file);
  const d = statSync(dir);
  const why =
    st.mode & 0o002
      ? 'it is writable by every user'
      : uid !== undefined && st.uid !== uid && st.uid !== 0
        ? `it is owned by uid ${st.uid}, not by you (uid ${uid}) or root`
        : d.mode & 0o002 && !(d.mode & 0o1000)
          ? `its directory ${dir} is writable by every user`
          : undefined;
  if (why)
    throw new HookError(
      'HOOK_UNSAFE',
      `hook ${file} refused: ${why}, so someone else could have changed what runs as you. chown/chmod it (e.g. chmod go-w)`,
    );
}

export const HOOK_PREFIX = 'cutover-on-';
const NOTIFY_EVENTS: readonly LifecycleEvent[] = [
  'start',
  'point-of-no-return',
  'failure',
  'rollback',
  'success',
];
const DEFAULT_HOOK_TIMEOUT_MS = 60_000;

export class HookError extends StepError {}

/** The CUTOVER_* variables a hook gets (on top of the run's environment). */
export function hookEnv(
  event: LifecycleEvent,
  info: LifecycleInfo,
  runbookName: string,
): Record<string, string> {
  const out: Record<string, string> = {
    CUTOVER_EVENT: event,
    CUTOVER_HOOK: `${HOOK_PREFIX}${event}`,
    CUTOVER_RUNBOOK: runbookName,
    CUTOVER_RUN_ID: info.runId,
    CUTOVER_RUN_DIR: info.runDir,
    CUTOVER_DRY_RUN: info.dryRun ? '1' : '0',
  };
  if (info.stepId !== undefined) out.CUTOVER_STEP_ID = info.stepId;
  if (info.kind !== undefined) out.CUTOVER_STEP_KIND = info.kind;
  if (info.status !== undefined) out.CUTOVER_STATUS = info.status;
  if (info.error) {
    out.CUTOVER_ERROR = info.error.message;
    out.CUTOVER_ERROR_CODE = info.error.code;
  }
  return out;
}

export function eventMessage(event: LifecycleEvent, info: LifecycleInfo, runbookName: string): string {
  const head = `cutover ${runbookName}${info.dryRun ? ' (dry run)' : ''}`;
  const step = info.stepId ? `step ${info.stepId}${info.kind ? ` (${info.kind})` : ''}` : 'a step';
  switch (event) {
    case 'start':
      return `${head}: run ${info.runId} started`;
    case 'point-of-no-return':
      return `${head}: passed the point of no return at ${step} (run ${info.runId})`;
    case 'failure':
      return `${head}: ${step} failed${info.error ? `: ${info.error.code}: ${info.error.message}` : ''} (run ${info.runId})`;
    case 'rollback':
      return `${head}: rolling back run ${info.runId}`;
    case 'success':
      return `${head}: run ${info.runId} succeeded`;
    default:
      return `${head}: ${event}${info.stepId ? ` ${step}` : ''} (run ${info.runId})`;
  }
}

/** ${env.NAME} in a webhook URL, resolved from the run's environment; undefined when it cannot be. */
export function renderWebhook(
  url: string,
  env: Record<string, string | undefined>,
): { url?: string; problem?: string } {
  let problem: string | undefined;
  const out = url.replace(/\$\{([^}]*)\}/g, (_m, ref: string) => {
    const m = /^env\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(ref.trim());
    if (!m) {
      problem ??= `\${${ref}} cannot be used in notify.webhook (only \${env.NAME})`;
      return '';
    }
    const v = env[m[1]!];
    if (v === undefined || v === '') problem ??= `environment variable ${m[1]} is not set`;
    return v ?? '';
  });
  return problem ? { problem } : { url: out };
}

function runHook(file: string, env: Record<string, string>, cwd: string, timeoutMs: number): Promise<void> {
  const name = file.split('/').pop()!;
  return new Promise((resolvePromise, reject) => {
    // Its own process group, so a timeout ends the hook and whatever it started, nothing else.
    const child = spawn(file, [], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    const keep = (b: Buffer) => {
      output = (output + b.toString('utf8')).slice(-8192);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let timedOut = false;
    let killer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      const kill = (sig: NodeJS.Signals) => {
        try {
          if (child.pid) process.kill(-child.pid, sig);
        } catch {
          // already gone
        }
      };
      kill('SIGTERM');
      killer = setTimeout(() => kill('SIGKILL'), 2000);
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new HookError('HOOK_FAILED', `hook ${name} could not start: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (killer) clearTimeout(killer);
      if (timedOut)
        return reject(
          new HookError(
            'HOOK_TIMEOUT',
            `hook ${name} did not finish within ${formatMs(timeoutMs)}; it was stopped`,
          ),
        );
      if (code === 0) return resolvePromise();
      const out = tail(output);
      reject(
        new HookError(
          'HOOK_FAILED',
          `hook ${name} ${code === null ? `was killed (${signal})` : `exited ${code}`}${out ? `: ${out}` : ''}`,
        ),
      );
    });
  });
}

export function createLifecycle(opts: LifecycleOptions): Lifecycle {
  const hooksDir = opts.hooksDir !== undefined ? resolve(opts.runbookDir, opts.hooksDir) : undefined;
  if (hooksDir && !existsSync(hooksDir))
    opts.warn(`hooks directory ${hooksDir} does not exist: no hooks will run`);
  const envTimeout =
    opts.env.CUTOVER_HOOK_TIMEOUT !== undefined ? parseDuration(opts.env.CUTOVER_HOOK_TIMEOUT) : undefined;
  const hookTimeoutMs = opts.hookTimeoutMs ?? envTimeout ?? DEFAULT_HOOK_TIMEOUT_MS;
  const notifiers = opts.notify === undefined ? [] : Array.isArray(opts.notify) ? opts.notify : [opts.notify];
  const secrets = [...secretValues(opts.env), ...(opts.secrets ?? []).filter((x) => x.length >= 3)].sort(
    (a, b) => b.length - a.length,
  );
  // The run's own context must not leak in from a parent cutover (a hook that runs cutover).
  const baseEnv = Object.fromEntries(
    Object.entries(opts.env).filter(
      (e): e is [string, string] =>
        e[1] !== undefined && !e[0].startsWith('CUTOVER_STEP_') && !e[0].startsWith('CUTOVER_ERROR'),
    ),
  );

  let saidSkipped = false;
  async function hook(event: LifecycleEvent, info: LifecycleInfo): Promise<void> {
    if (!hooksDir) return;
    if (info.dryRun && !opts.hooksInDryRun) {
      if (!saidSkipped && existsSync(hooksDir)) {
        saidSkipped = true;
        opts.warn(
          `plan: hooks in ${hooksDir} not run (a plan runs no author command; --run-commands runs them)`,
        );
      }
      return;
    }
    const file = join(hooksDir, `${HOOK_PREFIX}${event}`);
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(file);
    } catch {
      return; // no hook for this event
    }
    if (!st.isFile()) return;
    checkHookSafety(file, hooksDir);
    try {
      accessSync(file, constants.X_OK);
    } catch {
      throw new HookError(
        'HOOK_NOT_EXECUTABLE',
        `hook ${file} is not executable: chmod +x it (or remove it)`,
      );
    }
    await runHook(
      file,
      { ...baseEnv, ...hookEnv(event, info, opts.runbookName) },
      opts.runbookDir,
      hookTimeoutMs,
    );
  }

  async function notifyAll(event: LifecycleEvent, info: LifecycleInfo): Promise<void> {
    if (info.dryRun || !NOTIFY_EVENTS.includes(event)) return;
    const text = redact(eventMessage(event, info, opts.runbookName), secrets);
    await Promise.all(
      notifiers
        .filter((n) => ((n.on ?? NOTIFY_EVENTS) as readonly string[]).includes(event))
        .map(async (n) => {
          const w = renderWebhook(n.webhook, opts.env);
          if (!w.url) {
            opts.warn(`notification (${event}) not sent: ${w.problem}`);
            return;
          }
          const format: WebhookFormat = n.format ?? 'slack';
          const fields = {
            runbook: opts.runbookName,
            event,
            runId: info.runId,
            ...(info.stepId ? { stepId: info.stepId } : {}),
            ...(info.kind ? { kind: info.kind } : {}),
            ...(info.status ? { status: info.status } : {}),
            ...(info.error
              ? { error: { code: info.error.code, message: redact(info.error.message, secrets) } }
              : {}),
          };
          const r = await postWebhook(httpRequest, {
            url: w.url,
            format,
            text: redact(text, [w.url]),
            ...(format === 'json' ? { fields } : {}),
            timeoutMs: n.timeout !== undefined ? parseDuration(n.timeout)! : 5000,
          });
          if (!r.delivered)
            opts.warn(
              `notification (${event}) not delivered (the run goes on): ${r.problem ?? urlHost(w.url)}`,
            );
        }),
    );
  }

  return async (event, info) => {
    // Notifications go out whatever the hook does; the hook's failure is what the engine sees.
    const [h] = await Promise.allSettled([hook(event, info), notifyAll(event, info)]);
    if (h.status === 'rejected') throw h.reason;
  };
}
