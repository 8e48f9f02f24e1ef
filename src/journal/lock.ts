// One run at a time per runbook and target. The lock file names its holder; a lock whose process
// is gone (same host, pid not alive) is stale and taken over.
import { mkdirSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LockedError } from '../errors.js';
import { operator } from './journal.js';

export interface LockInfo {
  pid: number;
  host: string;
  by: string;
  runDir: string;
  since: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function acquireLock(lockDir: string, key: string, runDir: string): () => void {
  mkdirSync(lockDir, { recursive: true });
  const path = join(lockDir, `${key.replace(/[^\w.-]/g, '_')}.lock`);
  const info: LockInfo = {
    pid: process.pid,
    host: hostname(),
    by: operator(),
    runDir,
    since: new Date().toISOString(),
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, JSON.stringify(info));
      closeSync(fd);
      return () => {
        try {
          const cur = JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
          if (cur.pid === process.pid && cur.host === info.host) rmSync(path, { force: true });
        } catch {
          // already gone
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder: LockInfo | undefined;
    try {
      holder = JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
    } catch {
      holder = undefined; // half-written by a process that died: stale
    }
    if (holder && (holder.host !== info.host || alive(holder.pid)))
      throw new LockedError(
        `another run holds the lock for ${key}: ${holder.by} (pid ${holder.pid} on ${holder.host}) since ${holder.since}, run dir ${holder.runDir}. Wait for it, or check it with \`cutover status ${holder.runDir}\``,
      );
    rmSync(path, { force: true });
  }
  throw new LockedError(`could not take the lock ${path}`);
}
