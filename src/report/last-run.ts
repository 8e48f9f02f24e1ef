// `--last`: the newest run under --runs-dir, so a run id never has to be copied out of `ls runs/`.
import { closeSync, existsSync, openSync, readdirSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';

/** The run-start time of a run directory (its journal's first line), or undefined if it has none. */
function startedAt(dir: string): string | undefined {
  const file = join(dir, 'journal.jsonl');
  if (!existsSync(file)) return undefined;
  const buf = Buffer.alloc(4096);
  const fd = openSync(file, 'r');
  try {
    const n = readSync(fd, buf, 0, buf.length, 0);
    const first = buf.subarray(0, n).toString('utf8').split('\n')[0] ?? '';
    const ts = /"ts":"([^"]+)"/.exec(first)?.[1];
    return ts && !Number.isNaN(Date.parse(ts)) ? ts : undefined;
  } finally {
    closeSync(fd);
  }
}

/** The run directory under runsDir that started last (by its journal's first record). */
export function lastRun(runsDir: string): string {
  let entries: string[];
  try {
    entries = readdirSync(runsDir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    throw new InputError('NO_RUNS', `${runsDir}: no such runs directory (set it with --runs-dir)`);
  }
  let best: { dir: string; ts: number } | undefined;
  for (const name of entries) {
    const dir = join(runsDir, name);
    const ts = startedAt(dir);
    if (ts === undefined) continue;
    const t = Date.parse(ts);
    // Same start to the millisecond: the later name (run ids begin with their start time).
    if (!best || t > best.ts || (t === best.ts && dir > best.dir)) best = { dir, ts: t };
  }
  if (!best) throw new InputError('NO_RUNS', `${runsDir}: holds no run (no journal.jsonl in any directory)`);
  return best.dir;
}

/** RUN_DIR or --last, exactly one: what `status` and `report` take. */
export function runDirArg(runDir: string | undefined, o: { last?: boolean; runsDir: string }): string {
  if (runDir !== undefined && o.last)
    throw new InputError('USAGE', 'give a run directory or --last, not both');
  if (runDir !== undefined) return runDir;
  if (o.last) return lastRun(o.runsDir);
  throw new InputError('USAGE', 'which run? give its directory, or --last for the newest under --runs-dir');
}
