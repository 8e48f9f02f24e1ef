// Running a small POSIX script on a host: `local` through the shell adapter, anything else through
// `ssh HOST` with the user's own ssh config. The host and the script each travel as one quoted
// word, so a host name or a path holding `;` or `$(...)` is data, never code. Scripts stay POSIX
// (no bash-isms): the remote login shell may be sh or dash.
import type { ShellResult } from '../../adapters/shell.js';
import type { StepContext } from '../../engine/types.js';
import { StepError } from '../../errors.js';
import { shq, tail } from './common.js';

export const LOCAL = 'local';

// user@host, host aliases from ssh config, IPv4/IPv6 literals; never starting with '-' (an ssh option).
const HOST_RE = /^(?:[A-Za-z0-9._][A-Za-z0-9._-]*@)?[A-Za-z0-9_:][A-Za-z0-9._:-]*$/;

export function hostProblem(host: string): string | undefined {
  if (host === LOCAL) return undefined;
  if (!HOST_RE.test(host))
    return `host ${JSON.stringify(host)} is not a host name: use letters, digits, '.', '-', '_' (optionally user@), or "local"`;
  return undefined;
}

export interface HostRunOptions {
  /** Bytes for the script's stdin. */
  input?: string;
  timeoutMs?: number;
  /** Plan wording for writes ("would run <describe>"). */
  describe?: string;
}

export const SSH_OPTIONS = ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10'];

/** The bash command that runs `script` on `host`. */
export function hostCommand(host: string, script: string): string {
  if (host === LOCAL) return script;
  // `--` ends ssh's options: even a host that slipped past validation cannot become one.
  return ['ssh', ...SSH_OPTIONS, '--', shq(host), shq(script)].join(' ');
}

export class HostUnreachableError extends StepError {
  constructor(host: string, r: ShellResult) {
    super(
      'HOST_UNREACHABLE',
      `host ${host}: ssh failed (exit 255${r.stderr.trim() ? `: ${tail(r.stderr, 1)}` : ''}) — check that \`ssh ${host} true\` works without a prompt (BatchMode)`,
      { host },
    );
  }
}

async function exec(
  ctx: StepContext,
  host: string,
  script: string,
  write: boolean,
  o: HostRunOptions,
): Promise<ShellResult> {
  const problem = hostProblem(host);
  if (problem) throw new StepError('BAD_HOST', problem, { host });
  const command = hostCommand(host, script);
  const opts = {
    nothrow: true,
    signal: ctx.signal,
    timeoutMs: o.timeoutMs ?? 60_000,
    ...(o.input !== undefined ? { input: o.input } : {}),
  };
  const r = write
    ? await ctx.adapters.shell.run(command, { ...opts, ...(o.describe ? { describe: o.describe } : {}) })
    : await ctx.adapters.shell.read(command, opts);
  if (host !== LOCAL && r.exitCode === 255) throw new HostUnreachableError(host, r);
  return r;
}

/** A script that only reads: runs in dry run too. Resolves with non-zero exits (check exitCode). */
export function readOnHost(
  ctx: StepContext,
  host: string,
  script: string,
  o: HostRunOptions = {},
): Promise<ShellResult> {
  return exec(ctx, host, script, false, o);
}

/** A script that changes something: recorded, not run, in dry run. */
export function writeOnHost(
  ctx: StepContext,
  host: string,
  script: string,
  o: HostRunOptions = {},
): Promise<ShellResult> {
  return exec(ctx, host, script, true, o);
}

export function failed(host: string, what: string, r: ShellResult): StepError {
  const out = tail(r.stderr || r.stdout);
  return new StepError(
    'HOST_COMMAND_FAILED',
    `host ${host}: ${what} failed (exit ${r.exitCode})${out ? `: ${out}` : ''}`,
    {
      host,
      exitCode: r.exitCode,
    },
  );
}
