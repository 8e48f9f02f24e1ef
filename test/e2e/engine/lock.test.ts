// The run lock: mutually exclusive under a real stampede (10 processes at once, 20 rounds, exactly
// one holder each), and per target rather than per --runs-dir (the same cutover started from
// another directory with another --runs-dir meets it: exit 4 naming the holder).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO, runCli, startCli } from '../../helpers/cli.js';
import { sh, writeRunbook } from '../../helpers/runbooks.js';
import { onlyRunDir, workspace } from '../../helpers/workspace.js';

const LOCK_JS = join(REPO, 'dist', 'journal', 'lock.js');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

// A contender: waits for a common start instant, tries once; a holder keeps the lock until its
// stdin closes (so every other contender has tried while it is held).
const CONTENDER = `
const { acquireLock } = await import(process.argv[1]);
const [dir, startAt] = [process.argv[2], Number(process.argv[3])];
while (Date.now() < startAt) {}
try {
  const release = acquireLock(dir, 'db-10.0.0.1:3306', 'run-' + process.pid);
  process.stdout.write('HELD\\n');
  process.stdin.on('end', () => { release(); process.exit(0); });
  process.stdin.resume();
} catch (e) {
  process.stdout.write((e.code === 'LOCKED' ? 'LOCKED ' : 'ERROR ') + e.message + '\\n');
  process.exit(e.code === 'LOCKED' ? 4 : 1);
}`;

async function round(dir: string): Promise<{ held: number; locked: number; errors: string[] }> {
  const startAt = Date.now() + 1500;
  const kids: { child: ChildProcess; out: string; done: Promise<number | null> }[] = [];
  for (let i = 0; i < 10; i++) {
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', CONTENDER, LOCK_JS, dir, String(startAt)],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const k = { child, out: '', done: new Promise<number | null>((r) => child.on('exit', r)) };
    child.stdout!.on('data', (d: Buffer) => {
      k.out += d.toString();
    });
    kids.push(k);
  }
  // Every contender has answered: holders print HELD and wait, the others exit.
  const answered = async () => {
    for (;;) {
      if (kids.every((k) => k.out.includes('\n'))) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await answered();
  const held = kids.filter((k) => k.out.startsWith('HELD')).length;
  for (const k of kids) k.child.stdin!.end();
  await Promise.all(kids.map((k) => k.done));
  return {
    held,
    locked: kids.filter((k) => k.out.startsWith('LOCKED')).length,
    errors: kids.filter((k) => k.out.startsWith('ERROR')).map((k) => k.out),
  };
}

// A churner: takes and releases the lock in a loop until the deadline. Each time it holds it, the
// lock file must carry its own claim, and the critical-section marker must be free: two holders at
// once show up as one or the other. The window in which a half-made lock can be misjudged is
// microseconds wide: thousands of acquisitions in a few seconds are what make a race show.
const CHURNER = `
const { acquireLock } = await import(process.argv[1]);
const { closeSync, openSync, readFileSync, rmSync } = await import('node:fs');
const { join } = await import('node:path');
const [dir, startAt, ms] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const lockFile = join(dir, 'db-10.0.0.2_3306.lock');
const cs = join(dir, 'critical-section');
while (Date.now() < startAt) {}
const n = { held: 0, locked: 0, overlap: 0, notMine: 0 };
for (let i = 0; Date.now() < startAt + ms; i++) {
  const claim = 'run-' + process.pid + '-' + i;
  let release;
  try {
    release = acquireLock(dir, 'db-10.0.0.2:3306', claim);
  } catch (e) {
    if (e.code !== 'LOCKED') throw e;
    n.locked++;
    continue;
  }
  n.held++;
  let text = '';
  try { text = readFileSync(lockFile, 'utf8'); } catch {}
  if (!text.includes(claim)) n.notMine++;
  try {
    closeSync(openSync(cs, 'wx'));
    for (let k = 0; k < 2000; k++) Math.sqrt(k);
    rmSync(cs);
  } catch {
    n.overlap++;
  }
  release();
}
process.stdout.write(JSON.stringify(n) + '\\n');`;

describe('run lock', () => {
  it('6 processes taking and releasing it for 3 s: never two holders, each holder sees its own claim', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cutover-lock-churn-'));
    dirs.push(dir);
    const startAt = Date.now() + 1500;
    const kids = Array.from({ length: 6 }, () => {
      const child = spawn(
        process.execPath,
        ['--input-type=module', '-e', CHURNER, LOCK_JS, dir, String(startAt), '3000'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      let err = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
      });
      child.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
      });
      return new Promise<{ code: number | null; out: string; err: string }>((r) =>
        child.on('exit', (code) => r({ code, out, err })),
      );
    });
    const results = await Promise.all(kids);
    for (const k of results) expect(k.code, k.err).toBe(0);
    const n = results
      .map((k) => JSON.parse(k.out) as Record<string, number>)
      .reduce((a, b) => ({
        held: a.held! + b.held!,
        locked: a.locked! + b.locked!,
        overlap: a.overlap! + b.overlap!,
        notMine: a.notMine! + b.notMine!,
      }));
    expect({ overlap: n.overlap, notMine: n.notMine }, JSON.stringify(n)).toEqual({ overlap: 0, notMine: 0 });
    // It was contended: many acquisitions, many refusals.
    expect(n.held).toBeGreaterThan(200);
    expect(n.locked).toBeGreaterThan(200);
    expect(readdirSync(dir)).toEqual([]);
  }, 60_000);

  it('10 processes at once, 20 rounds: exactly one holder each round, the rest locked out', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cutover-lock-stampede-'));
    dirs.push(dir);
    for (let r = 0; r < 20; r++) {
      const res = await round(dir);
      expect(res, `round ${r + 1}`).toEqual({ held: 1, locked: 9, errors: [] });
      // Released: nothing left behind for the next round.
      expect(readdirSync(dir)).toEqual([]);
    }
  }, 240_000);

  it('the same cutover from another directory with another --runs-dir: exit 4 naming the holder', async () => {
    const a = workspace();
    const b = workspace();
    const lockDir = mkdtempSync(join(tmpdir(), 'cutover-lock-dirs-'));
    dirs.push(a.dir, b.dir, lockDir);
    const spec = { name: 'lock-two-dirs', steps: [sh('slow', `sleep 4`)] };
    const rbA = writeRunbook(a.dir, spec);
    const rbB = writeRunbook(b.dir, spec);
    const env = { CUTOVER_LOCK_DIR: lockDir };
    const first = startCli(['run', rbA, '--execute', '--runs-dir', a.runsDir], { cwd: a.dir, env });
    // Until the first run has started its step (it holds the lock by then).
    for (let i = 0; i < 200 && !/slow/.test(first.stdout()); i++) await new Promise((r) => setTimeout(r, 25));
    const second = await runCli(['run', rbB, '--execute', '--runs-dir', b.runsDir], { cwd: b.dir, env });
    expect(second.code, second.stdout + second.stderr).toBe(4);
    const runA = onlyRunDir(a.runsDir);
    expect(second.stderr).toMatch(/another run holds the lock for runbook-lock-two-dirs/);
    expect(second.stderr).toContain(`run dir ${runA}`);
    expect(second.stderr.trim().split('\n')).toHaveLength(1);
    // Locked out before anything ran: no run directory left behind.
    expect(existsSync(b.runsDir) ? readdirSync(b.runsDir) : []).toEqual([]);
    const r = await first.done;
    expect(r.code, r.stderr).toBe(0);
    // Released: the second one runs now.
    const again = await runCli(['run', rbB, '--execute', '--runs-dir', b.runsDir], { cwd: b.dir, env });
    expect(again.code, again.stderr).toBe(0);
  }, 60_000);
});
