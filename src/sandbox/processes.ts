// Process bookkeeping by pid only: the sandbox never looks processes up by name, because other
// MariaDB instances (other people's tests, a developer's own) run on the same machine.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { sleep } from '../util/sleep.js';

export interface PidsFile {
  startedAt: string;
  ports: { db: number; aws: number; dns: number; app: number };
  pids: Record<string, number>;
}

export function readPidsFile(path: string): PidsFile | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as PidsFile;
  } catch {
    return undefined;
  }
}

export function writePidsFile(path: string, pids: PidsFile): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(pids, null, 2)}\n`);
  renameSync(tmp, path);
}

function procStat(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
}

/** Alive and not a zombie: a zombie still answers kill(pid, 0) but holds no port or file. */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  const stat = procStat(pid);
  if (stat === undefined) return true;
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

/**
 * Whether the pid is still the process the sandbox started (its command line names the sandbox
 * directory), so a recycled pid is never signalled. Without /proc we can only trust the record.
 */
export function belongsTo(pid: number, marker: string): boolean {
  if (!isAlive(pid)) return false;
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return !existsSync('/proc/self');
  }
  return cmdline.split('\0').some((arg) => arg.includes(marker));
}

export interface DetachedChild {
  pid: number;
  /** Resolves with the exit code if the child exits while this process still watches it. */
  exited: Promise<number | null>;
}

/** Starts a process that outlives this one: own process group, no inherited stdio, not awaited. */
export function spawnDetached(
  command: string,
  args: string[],
  opts: { logFile: string; env?: NodeJS.ProcessEnv; cwd?: string },
): DetachedChild {
  const fd = openSync(opts.logFile, 'a');
  try {
    const child = spawn(command, args, {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: opts.env ?? process.env,
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    });
    const exited = new Promise<number | null>((res) => {
      child.once('exit', (code, signal) => res(code ?? (signal ? 128 : null)));
      child.once('error', () => res(127));
    });
    child.unref();
    if (child.pid === undefined) throw new Error(`could not start ${command}`);
    return { pid: child.pid, exited };
  } finally {
    closeSync(fd);
  }
}

/** SIGTERM, wait up to graceMs, then SIGKILL what is left; returns the pids that had to be killed. */
export async function stopPids(
  pids: number[],
  graceMs = 15_000,
): Promise<{ killed: number[]; stillAlive: number[] }> {
  const targets = pids.filter(isAlive);
  for (const pid of targets) signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && targets.some(isAlive)) await sleep(50);
  const killed = targets.filter(isAlive);
  for (const pid of killed) signal(pid, 'SIGKILL');
  const killDeadline = Date.now() + 5000;
  while (Date.now() < killDeadline && killed.some(isAlive)) await sleep(50);
  // A dead child of this very process stays a zombie (and answers kill(pid, 0)) until the event
  // loop reaps it: give it that chance so callers checking by pid see it gone.
  const reapDeadline = Date.now() + 2000;
  while (Date.now() < reapDeadline && targets.some(unreapedChild)) await sleep(10);
  return { killed, stillAlive: targets.filter(isAlive) };
}

/** A zombie whose parent is this process: only our own event loop can make it go. */
function unreapedChild(pid: number): boolean {
  const stat = procStat(pid);
  if (stat === undefined) return false;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[0] === 'Z' && Number(fields[1]) === process.pid;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}
