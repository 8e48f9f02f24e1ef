// The journal as an attack path: someone who can write the run directory (not the journal key)
// forges an undo or a run-end. `log verify` fails, `rollback`/`resume` refuse before acting (exit 2,
// one line), `status` does not repeat the forged outcome; the untouched copy still rolls back.
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/cli.js';
import { sh, writeRunbook } from '../../helpers/runbooks.js';
import { onlyRunDir, type Workspace, workspace } from '../../helpers/workspace.js';

let ws: Workspace;
let runDir: string;
let env: Record<string, string>;
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

beforeAll(async () => {
  ws = workspace();
  // This test's own journal key (the key file under a config dir of its own).
  env = { XDG_CONFIG_HOME: ws.path('config') };
  const rb = writeRunbook(ws.dir, {
    name: 'journal-attack',
    params: { dir: ws.filesDir },
    steps: [
      sh('a', 'echo a > ${params.dir}/a.txt', { undo: 'rm -f ${params.dir}/a.txt' }),
      sh('b', 'echo b > ${params.dir}/b.txt', { undo: 'rm -f ${params.dir}/b.txt' }),
    ],
  });
  const r = await runCli(['run', rb, '--execute', '--runs-dir', ws.runsDir], { cwd: ws.dir, env });
  expect(r.code, r.stdout + r.stderr).toBe(0);
  runDir = onlyRunDir(ws.runsDir);
});

afterAll(() => ws.cleanup());

/** Rebuilds every hash and the head after `edit`: all that is possible without the key. */
function forge(
  name: string,
  edit: (recs: Record<string, unknown>[], runbook: string) => string | undefined,
  from = runDir,
) {
  const dir = ws.path('forged', name);
  cpSync(from, dir, { recursive: true });
  const recs = readFileSync(join(dir, 'journal.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const newRunbook = edit(recs, readFileSync(join(dir, 'runbook.yaml'), 'utf8'));
  if (newRunbook !== undefined) {
    writeFileSync(join(dir, 'runbook.yaml'), newRunbook);
    const h = sha(newRunbook);
    for (const r of recs) {
      r.runbookSha256 = h;
      if (r.type === 'run-start') (r.runbook as { sha256: string }).sha256 = h;
    }
  }
  let prev = '0'.repeat(64);
  const out = recs.map((r, i) => {
    const { hash: _h, mac: _m, ...rest } = r;
    const json = JSON.stringify({ ...rest, seq: i + 1, prev });
    prev = sha(json);
    return `${json.slice(0, -1)},"hash":"${prev}"}`;
  });
  writeFileSync(join(dir, 'journal.jsonl'), `${out.join('\n')}\n`);
  writeFileSync(join(dir, 'journal.head'), `${recs.length} ${prev}\n`);
  return dir;
}

const marker = () => ws.path('pwned');

describe('a journal forged without the key', () => {
  it('a forged undo command in the run copy of the runbook: rollback refuses, runs nothing', async () => {
    const dir = forge('undo', (_recs, rb) => rb.replace(/rm -f \S+\/a\.txt/, `touch ${marker()}`));
    const v = await runCli(['log', 'verify', dir], { env });
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/TAMPERED/);
    const r = await runCli(['rollback', dir, '--yes'], { env });
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/does not verify .*refusing to act on it.*cutover log verify/);
    expect(existsSync(marker())).toBe(false);
    // Nothing undone either.
    expect(existsSync(join(ws.filesDir, 'a.txt'))).toBe(true);
    expect(existsSync(join(ws.filesDir, 'b.txt'))).toBe(true);
  });

  it('a forged run state: resume refuses before reading it', async () => {
    const dir = forge('resume', (recs) => {
      recs.pop(); // drop run-end: the run now looks interrupted, resumable
      const done = recs.find((r) => r.type === 'step-done' && r.stepId === 'b')!;
      done.outputs = { stdout: 'forged' };
      return undefined;
    });
    const r = await runCli(['resume', dir, '--yes'], { env });
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/does not verify/);
  });

  it('a symlinked journal.head: rollback refuses (exit 2, one line), the link target is untouched', async () => {
    const dir = ws.path('forged', 'link');
    cpSync(runDir, dir, { recursive: true });
    const target = ws.path('precious.txt');
    writeFileSync(target, 'precious\n');
    rmSync(join(dir, 'journal.head'));
    symlinkSync(target, join(dir, 'journal.head'));
    const r = await runCli(['rollback', dir, '--yes'], { env });
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/journal\.head is a symbolic link/);
    expect(readFileSync(target, 'utf8')).toBe('precious\n');
    expect(existsSync(join(ws.filesDir, 'a.txt'))).toBe(true);
  });

  it('a rolled-back run whose final record is rewritten to succeeded (chain and head rebuilt) fails log verify and status', async () => {
    const rb = writeRunbook(
      ws.dir,
      {
        name: 'journal-attack-rolled-back',
        params: { dir: ws.filesDir },
        steps: [
          sh('c', 'echo c > ${params.dir}/c.txt', { undo: 'rm -f ${params.dir}/c.txt' }),
          sh('boom', 'exit 1'),
        ],
      },
      'rolled-back.yaml',
    );
    const runs = ws.path('runs-rolled-back');
    const r = await runCli(['run', rb, '--execute', '--runs-dir', runs, '--json'], { cwd: ws.dir, env });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const real = onlyRunDir(runs);
    const published = /journal head \d+ ([0-9a-f]{64})/.exec(r.stdout)?.[1];
    expect(published).toBeDefined();
    let last = 0;
    const dir = forge(
      'rolled-back-to-succeeded',
      (recs) => {
        const end = recs.at(-1)!;
        expect(end).toMatchObject({ type: 'run-end', status: 'rolled-back' });
        Object.assign(end, { status: 'succeeded', exitCode: 0, message: 'ok' });
        last = recs.length;
        return undefined;
      },
      real,
    );
    const v = await runCli(['log', 'verify', dir], { env });
    expect(v.code, v.stdout + v.stderr).toBe(1);
    // Another host, anchored by the head the run published: the rewritten end does not match it.
    const other = { XDG_CONFIG_HOME: ws.path('other-config') };
    const w = await runCli(['log', 'verify', dir, '--expect-head', published!], { env: other });
    expect(w.code, w.stdout + w.stderr).toBe(1);
    expect(w.stdout + w.stderr).toMatch(new RegExp(`:${last}\\b|line ${last}\\b|not the expected`));
    const s = JSON.parse((await runCli(['status', dir, '--json'], { env })).stdout) as { status: string };
    expect(s.status).not.toBe('succeeded');
    expect((await runCli(['log', 'verify', real], { env })).code).toBe(0);
  });

  it('status does not report the outcome of a journal that does not verify', async () => {
    const dir = forge('status', () => undefined);
    const r = await runCli(['status', dir, '--json'], { env });
    const s = JSON.parse(r.stdout) as { status: string; journal: { intact: boolean; reason: string } };
    expect(s.journal.intact).toBe(false);
    expect(s.status).toMatch(/^unverified/);
  });

  it('the untouched run verifies, prints its head, honours --expect-head, and rolls back', async () => {
    const recs = readFileSync(join(runDir, 'journal.jsonl'), 'utf8').split('\n').filter(Boolean);
    const head = (JSON.parse(recs.at(-1)!) as { hash: string }).hash;
    const v = await runCli(['log', 'verify', runDir], { env });
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toContain(`head ${head}`);
    const st = JSON.parse((await runCli(['status', runDir, '--json'], { env })).stdout) as {
      journal: { head: string };
    };
    expect(st.journal.head).toBe(head);
    // Another host (no key): the published head anchors it; a wrong one does not.
    const other = { XDG_CONFIG_HOME: ws.path('other-config') };
    expect((await runCli(['log', 'verify', runDir], { env: other })).code).toBe(1);
    expect((await runCli(['log', 'verify', runDir, '--expect-head', head], { env: other })).code).toBe(0);
    expect(
      (await runCli(['log', 'verify', runDir, '--expect-head', 'f'.repeat(64)], { env: other })).code,
    ).toBe(1);
    // The report names the head to publish, and on a host without the key says it is not anchored.
    expect((await runCli(['report', runDir], { env })).stdout).toContain(
      `hash chain intact (${recs.length} records, head \`${head}\`)`,
    );
    expect((await runCli(['report', runDir], { env: other })).stdout).toMatch(
      new RegExp(`head \`${head}\`\\) but \\*\\*not anchored here`),
    );
    expect(statSync(runDir).mode & 0o777).toBe(0o700);
    for (const f of ['journal.jsonl', 'journal.head', 'runbook.yaml', 'run.json'])
      expect(statSync(join(runDir, f)).mode & 0o777, f).toBe(0o600);
    const r = await runCli(['rollback', runDir, '--yes'], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(existsSync(join(ws.filesDir, 'a.txt'))).toBe(false);
  });

  it('--json ends with the journal head, to publish', async () => {
    const rb = writeRunbook(ws.dir, { name: 'journal-head', steps: [sh('x', 'true')] }, 'head.yaml');
    const runs = ws.path('runs-json');
    const r = await runCli(['run', rb, '--execute', '--json', '--runs-dir', runs], { cwd: ws.dir, env });
    expect(r.code, r.stderr).toBe(0);
    const last = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { message: string };
    const recs = readFileSync(join(onlyRunDir(runs), 'journal.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean);
    const head = JSON.parse(recs.at(-1)!) as { seq: number; hash: string };
    expect(last.message).toBe(`journal head ${head.seq} ${head.hash}`);
  });

  it('a host where the journal key cannot be made: run refuses (exit 2, one line), leaves no run directory', async () => {
    writeFileSync(ws.path('not-a-dir'), '');
    const rb = writeRunbook(ws.dir, { name: 'no-key', steps: [sh('x', 'true')] }, 'nokey.yaml');
    const runs = ws.path('runs-nokey');
    const r = await runCli(['run', rb, '--execute', '--runs-dir', runs], {
      cwd: ws.dir,
      env: { XDG_CONFIG_HOME: ws.path('not-a-dir', 'config') },
    });
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/cannot create the journal key .*set CUTOVER_JOURNAL_KEY/);
    expect(existsSync(runs)).toBe(false);
    // CUTOVER_JOURNAL_KEY is the way out.
    const ok = await runCli(['run', rb, '--execute', '--runs-dir', runs], {
      cwd: ws.dir,
      env: { XDG_CONFIG_HOME: ws.path('not-a-dir', 'config'), CUTOVER_JOURNAL_KEY: 'k'.repeat(40) },
    });
    expect(ok.code, ok.stderr).toBe(0);
  });
});
