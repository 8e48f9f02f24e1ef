// Commands run through zx (bash, pipefail). Run commands are writes (recorded in dry run); read
// commands (crontab -l, test -f) run for real in both modes.
import type { AdapterEnv } from './adapters.js';

export interface ShellResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface ShellOptions {
  cwd?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  signal?: AbortSignal;
  input?: string;
  /** Resolve instead of throwing on a non-zero exit. */
  nothrow?: boolean;
}

export interface ShellAdapter {
  /** A command that changes something. In dry run: recorded, not executed. */
  run(command: string, opts?: ShellOptions & { describe?: string }): Promise<ShellResult>;
  /** A command that only reads. Runs in both modes. */
  read(command: string, opts?: ShellOptions): Promise<ShellResult>;
}

export class ShellCommandError extends Error {
  readonly code = 'COMMAND_FAILED';
  constructor(
    readonly command: string,
    readonly result: ShellResult,
  ) {
    const tail = (result.stderr || result.stdout).trim().split('\n').slice(-3).join(' | ');
    super(`command exited ${result.exitCode}: ${command}${tail ? ` — ${tail}` : ''}`);
  }
}

export async function execShell(
  command: string,
  env: AdapterEnv,
  opts: ShellOptions = {},
): Promise<ShellResult> {
  const { $ } = await import('zx');
  const started = performance.now();
  // zx quotes interpolated values; a pre-templated command is passed raw as the whole script.
  const raw = Object.assign([command], { raw: [command] }) as unknown as TemplateStringsArray;
  const p = $({
    cwd: opts.cwd ?? env.cwd,
    env: { ...(env.env as Record<string, string>), ...opts.env },
    nothrow: true,
    quiet: true,
    timeout: opts.timeoutMs,
    signal: opts.signal,
    input: opts.input,
    verbose: false,
  })(raw);
  const out = await p;
  const result: ShellResult = {
    exitCode: out.exitCode ?? (out.signal ? 128 : 1),
    stdout: out.stdout,
    stderr: out.stderr,
    durationMs: performance.now() - started,
  };
  if (result.exitCode !== 0 && !opts.nothrow) throw new ShellCommandError(command, result);
  return result;
}

export function createShellAdapter(env: AdapterEnv): ShellAdapter {
  return {
    async run(command, opts = {}) {
      if (env.mode === 'dry') {
        env.record({ action: 'run', target: opts.describe ?? command });
        env.stats.recorded['shell.run'] = (env.stats.recorded['shell.run'] ?? 0) + 1;
        return { exitCode: 0, stdout: '', stderr: '', durationMs: 0 };
      }
      env.countWrite('shell.run');
      return execShell(command, env, opts);
    },
    async read(command, opts = {}) {
      env.countRead('shell.read');
      return execShell(command, env, opts);
    },
  };
}
