// One run at a time per target. A lock file per target (a database server, a zone + record, a
// security group) in a directory that does not depend on --runs-dir or the working directory, so the
// same cutover started from elsewhere still meets it. The file names its holder; a lock whose process
// is gone (same host, pid not alive) is stale and taken over.
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import { LockedError } from '../errors.js';
import { operator } from './journal.js';

export interface LockInfo {
  pid: number;
  host: string;
  by: string;
  runDir: string;
  since: string;
  /** Tells this acquisition from any other by the same pid (release removes only its own file). */
  nonce?: string;
}

/**
 * CUTOVER_LOCK_DIR, else $XDG_RUNTIME_DIR/cutover/locks, else ~/.cache/cutover/locks. Per user and
 * per machine: a team sharing one operator host can point CUTOVER_LOCK_DIR at a shared directory.
 */
export function defaultLockDir(): string {
  if (process.env.CUTOVER_LOCK_DIR) return process.env.CUTOVER_LOCK_DIR;
  if (process.env.XDG_RUNTIME_DIR) return join(process.env.XDG_RUNTIME_DIR, 'cutover', 'locks');
  return join(homedir(), '.cache', 'cutover', 'locks');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function lockPath(lockDir: string, key: string): string {
  return join(lockDir, `${key.replace(/[^\w.-]/g, '_').slice(0, 200)}.lock`);
}

/**
 * Creates `path` with `text` already in it, or fails with EEXIST: the content is written to a
 * private temp file and then hard-linked into place, so nobody ever reads a lock half-written.
 */
function createWith(path: string, text: string): boolean {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    rmSync(tmp, { force: true });
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function parse(text: string | undefined): LockInfo | undefined {
  try {
    const v = JSON.parse(text ?? '') as LockInfo;
    return typeof v?.pid === 'number' && typeof v.host === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Removes a stale lock without racing another breaker: only the holder of `<lock>.break` may
 * unlink, and only if the lock still has the exact content judged stale (a fresh lock someone
 * linked meanwhile is never removed). A breaker left by a crash is ignored after 10 s.
 */
function breakStale(path: string, staleText: string): void {
  const breaker = `${path}.break`;
  if (!createWith(breaker, String(process.pid))) {
    try {
      if (Date.now() - statSync(breaker).mtimeMs > 10_000) rmSync(breaker, { force: true });
    } catch {
      // gone already
    }
    return;
  }
  try {
    if (readText(path) === staleText) rmSync(path, { force: true });
  } finally {
    rmSync(breaker, { force: true });
  }
}

export function acquireLock(lockDir: string, key: string, runDir: string): () => void {
  mkdirSync(lockDir, { recursive: true, mode: 0o700 });
  const path = lockPath(lockDir, key);
  const info: LockInfo = {
    pid: process.pid,
    host: hostname(),
    by: operator(),
    runDir,
    since: new Date().toISOString(),
    nonce: randomBytes(8).toString('hex'),
  };
  const text = JSON.stringify(info);
  for (let attempt = 0; attempt < 20; attempt++) {
    if (createWith(path, text))
      return () => {
        // Only our own file: a lock broken as stale and retaken by another run is theirs.
        if (readText(path) === text) rmSync(path, { force: true });
      };
    const held = readText(path);
    if (held === undefined) continue; // released between our link and our read: try again
    const holder = parse(held);
    if (holder && (holder.host !== info.host || alive(holder.pid)))
      throw new LockedError(
        `another run holds the lock for ${key}: ${holder.by} (pid ${holder.pid} on ${holder.host}) since ${holder.since}, run dir ${holder.runDir}. Wait for it, or check it with \`cutover status ${holder.runDir}\``,
      );
    // Dead holder, or not a lock this version writes (content is complete before a lock is visible).
    breakStale(path, held);
    sleepSync(5 * (attempt + 1)); // another breaker may be at work
  }
  throw new LockedError(`could not take the lock ${path} (contended); try again`);
}

/**
 * Takes every key's lock, in sorted order (two runs with overlapping targets cannot each hold a
 * part), or none: on a refusal the ones already taken are released.
 */
export function acquireLocks(lockDir: string, keys: string[], runDir: string): () => void {
  const releases: (() => void)[] = [];
  const releaseAll = () => {
    for (const r of releases.reverse()) r();
  };
  try {
    for (const k of [...new Set(keys)].sort()) releases.push(acquireLock(lockDir, k, runDir));
  } catch (e) {
    releaseAll();
    throw e;
  }
  return releaseAll;
}
