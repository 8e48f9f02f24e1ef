// Temp directories, byte-exact directory snapshots and journal reading for the engine's e2e tests.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

export interface Workspace {
  dir: string;
  /** Where the runs go (--runs-dir). */
  runsDir: string;
  /** The files the runbook's steps change. */
  filesDir: string;
  path(...p: string[]): string;
  write(rel: string, text: string): string;
  read(rel: string): string;
  cleanup(): void;
}

export function workspace(prefix = 'cutover-e2e-'): Workspace {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const filesDir = join(dir, 'files');
  const runsDir = join(dir, 'runs');
  for (const d of [filesDir, runsDir]) mkdirSync(d, { recursive: true });
  return {
    dir,
    runsDir,
    filesDir,
    path: (...p) => join(dir, ...p),
    write(rel, text) {
      const p = join(dir, rel);
      writeFileSync(p, text);
      return p;
    },
    read: (rel) => readFileSync(join(dir, rel), 'utf8'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

function readdirSafe(d: string): string[] | undefined {
  try {
    return readdirSync(d);
  } catch {
    return undefined;
  }
}

/** Every file under dir, relative path → bytes (as base64, so the comparison is byte-exact). */
export function snapshotDir(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = readFileSync(p).toString('base64');
    }
  };
  walk(dir);
  return out;
}

export interface JournalLine {
  seq: number;
  ts: string;
  type: string;
  stepId?: string;
  prev: string;
  hash: string;
  [k: string]: unknown;
}

export function journalPath(runDir: string): string {
  return join(runDir, 'journal.jsonl');
}

export function readJournalLines(runDir: string): JournalLine[] {
  return readFileSync(journalPath(runDir), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as JournalLine);
}

/** The run directories under a runs dir, oldest first (run ids start with a UTC timestamp). */
export function runDirs(runsDir: string): string[] {
  return (readdirSafe(runsDir) ?? [])
    .filter((n) => !n.startsWith('.'))
    .map((n) => join(runsDir, n))
    .filter((p) => statSync(p).isDirectory())
    .sort((a, b) => statSync(a).birthtimeMs - statSync(b).birthtimeMs || a.localeCompare(b));
}

/** The one run directory a single run created. */
export function onlyRunDir(runsDir: string): string {
  const dirs = runDirs(runsDir);
  if (dirs.length !== 1) throw new Error(`expected one run dir in ${runsDir}, found ${dirs.length}`);
  return dirs[0]!;
}

/** [type, stepId] pairs of the journal, for order assertions. */
export function events(lines: JournalLine[], types: string[]): string[] {
  return lines.filter((l) => types.includes(l.type)).map((l) => `${l.type}${l.stepId ? ` ${l.stepId}` : ''}`);
}
