// The process is SIGKILLed while a step is in flight (no cleanup, as when the operator's machine
// dies). `cutover resume` finishes the run without applying any change twice; `cutover rollback`
// instead puts everything back as it was.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, runCliUntil, TEST_LOCK_DIR } from '../../helpers/cli.js';
import { sh, writeRunbook } from '../../helpers/runbooks.js';
import {
  events,
  onlyRunDir,
  readJournalLines,
  snapshotDir,
  type Workspace,
  workspace,
} from '../../helpers/workspace.js';

const STEPS = ['one', 'two', 'three'] as const;

// Each step appends its line to out.txt and its name to applied.txt (a log of every time the
// command ran), then writes a marker and, if a hold file exists, waits for it to go away: the
// test kills the CLI while the step is in flight. Step "two" has no check command, so after a
// crash it cannot be verified and is re-applied; its command is idempotent, so out.txt still gets
// its line once while applied.txt shows it ran twice.
function setup(ws: Workspace) {
  ws.write('files/out.txt', 'start\n');
  const d = '${params.dir}';
  const step = (id: string, withCheck: boolean) => {
    const append = withCheck
      ? `echo ${id} >> ${d}/out.txt`
      : `(grep -qx ${id} ${d}/out.txt || echo ${id} >> ${d}/out.txt)`;
    return sh(
      id,
      `${append} && echo ${id} >> ${d}/../applied.txt && touch ${d}/../marker-${id} && while [ -f ${d}/../hold-${id} ]; do sleep 0.05; done`,
      {
        undo: `sed -i '/^${id}$/d' ${d}/out.txt`,
        ...(withCheck ? { check: `grep -qx ${id} ${d}/out.txt` } : {}),
      },
    );
  };
  return writeRunbook(ws.dir, {
    name: 'crash-and-resume',
    params: { dir: ws.filesDir },
    steps: [step('one', true), step('two', false), step('three', true)],
  });
}

async function killDuring(ws: Workspace, rb: string, id: string): Promise<string> {
  ws.write(`hold-${id}`, '');
  const r = await runCliUntil(['run', rb, '--execute', '--runs-dir', ws.runsDir], {
    cwd: ws.dir,
    markerFile: ws.path(`marker-${id}`),
  });
  expect(r.signal).toBe('SIGKILL');
  // Let the orphaned step command finish: it has made its change already.
  rmSync(ws.path(`hold-${id}`));
  const runDir = onlyRunDir(ws.runsDir);
  const journal = readJournalLines(runDir);
  expect(journal.at(-1)?.type).not.toBe('run-end');
  expect(events(journal, ['step-start']).at(-1)).toBe(`step-start ${id}`);
  // The lock of the dead process is still there: resume and rollback must take it over.
  expect(readdirSync(TEST_LOCK_DIR).filter((f) => f.endsWith('.lock')).length).toBeGreaterThan(0);
  return runDir;
}

function appliedLog(ws: Workspace): string[] {
  return existsSync(ws.path('applied.txt')) ? ws.read('applied.txt').split('\n').filter(Boolean) : [];
}

describe('SIGKILL during a step', () => {
  let ws: Workspace | undefined;
  afterEach(() => ws?.cleanup());

  it.each(STEPS.map((id) => ({ id })))(
    'killed during $id: resume completes, no change applied twice',
    async ({ id }) => {
      ws = workspace();
      const rb = setup(ws);
      const runDir = await killDuring(ws, rb, id);

      const r = await runCli(['resume', runDir], { cwd: ws.dir });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(ws.read('files/out.txt')).toBe('start\none\ntwo\nthree\n');

      const journal = readJournalLines(runDir);
      expect(journal.at(-1)).toMatchObject({ type: 'run-end', status: 'succeeded', exitCode: 0 });
      expect(events(journal, ['step-done'])).toEqual(STEPS.map((s) => `step-done ${s}`));
      const ranTwice = appliedLog(ws).filter((s, i, all) => all.indexOf(s) !== i);
      if (id === 'two') {
        // No check command: nothing can tell whether it ran, so it is re-applied.
        expect(ranTwice).toEqual(['two']);
        expect(events(journal, ['step-reconciled'])).toEqual([]);
        expect(r.stdout).toContain('applying it again');
      } else {
        // The check shows the change is in place: verified, not re-applied.
        expect(ranTwice).toEqual([]);
        expect(events(journal, ['step-reconciled'])).toEqual([`step-reconciled ${id}`]);
        expect(r.stdout).toContain('verified, not re-applied');
      }
      // The steps done before the crash were not run again either.
      const before = STEPS.slice(0, STEPS.indexOf(id));
      for (const s of before) expect(appliedLog(ws).filter((x) => x === s)).toEqual([s]);

      const v = await runCli(['log', 'verify', runDir]);
      expect(v.code, v.stdout).toBe(0);
    },
  );

  it.each(STEPS.map((id) => ({ id })))(
    'killed during $id: rollback restores the start state',
    async ({ id }) => {
      ws = workspace();
      const rb = setup(ws);
      const start = snapshotDir(ws.filesDir);
      const runDir = await killDuring(ws, rb, id);
      expect(snapshotDir(ws.filesDir)).not.toEqual(start);

      const r = await runCli(['rollback', runDir], { cwd: ws.dir });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(snapshotDir(ws.filesDir)).toEqual(start);

      const journal = readJournalLines(runDir);
      const undone = STEPS.slice(0, STEPS.indexOf(id) + 1).reverse();
      expect(events(journal, ['undo-done'])).toEqual(undone.map((s) => `undo-done ${s}`));
      expect(journal.at(-1)).toMatchObject({ type: 'run-end', status: 'rolled-back' });

      // Rolled back: there is nothing left to resume.
      const again = await runCli(['resume', runDir], { cwd: ws.dir });
      expect(again.code).toBe(2);
      expect(again.stderr).toMatch(/already ended \(rolled-back\)/);
    },
  );

  it('killed during its rollback: status says so, resume refuses to go forward, rollback finishes', async () => {
    ws = workspace();
    ws.write('files/out.txt', 'start\n');
    const d = '${params.dir}';
    const rb = writeRunbook(ws.dir, {
      name: 'crash-in-rollback',
      params: { dir: ws.filesDir },
      steps: [
        // Its undo is in flight when the process dies: it has removed the line, not finished.
        sh('a', `echo a >> ${d}/out.txt`, {
          undo: `sed -i '/^a$/d' ${d}/out.txt && touch ${d}/../marker && while [ -f ${d}/../hold ]; do sleep 0.05; done`,
          check: `grep -qx a ${d}/out.txt`,
        }),
        sh('b', `echo b >> ${d}/out.txt`, {
          undo: `sed -i '/^b$/d' ${d}/out.txt`,
          check: `grep -qx b ${d}/out.txt`,
        }),
        // Fails the first time only: a resume that went forward would succeed and leave "a" undone.
        sh('c', `test -f ${d}/../failed-once || { touch ${d}/../failed-once; exit 1; }`),
      ],
    });
    ws.write('hold', '');
    const r = await runCliUntil(['run', rb, '--execute', '--runs-dir', ws.runsDir], {
      cwd: ws.dir,
      markerFile: ws.path('marker'),
    });
    expect(r.signal).toBe('SIGKILL');
    rmSync(ws.path('hold'));
    const runDir = onlyRunDir(ws.runsDir);

    const status = JSON.parse((await runCli(['status', runDir, '--json'])).stdout) as {
      status: string;
      next: string;
    };
    expect(status.status).toMatch(/interrupted during its rollback/);
    expect(status.next).toBe(`finish the rollback with \`cutover rollback ${runDir}\``);

    const resumed = await runCli(['resume', runDir], { cwd: ws.dir });
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(2);
    expect(resumed.stderr).toMatch(/cannot be resumed forward/);
    expect(ws.read('files/out.txt')).toBe('start\n');

    const rolled = await runCli(['rollback', runDir], { cwd: ws.dir });
    expect(rolled.code, rolled.stdout + rolled.stderr).toBe(0);
    expect(ws.read('files/out.txt')).toBe('start\n');
    expect(readJournalLines(runDir).at(-1)).toMatchObject({ type: 'run-end', status: 'rolled-back' });
  });
});
