// A run whose step k fails, for every k: the files are byte-identical to before and the journal
// shows the undo of k-1 ... 1, in that order.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { undoList } from '../../../src/engine/undo.js';
import type { JournalRecord } from '../../../src/journal/journal.js';
import { reconstruct } from '../../../src/journal/state.js';
import type { Step } from '../../../src/runbook/schema.js';
import { getKind } from '../../../src/steps/registry.js';
import { runCli } from '../../helpers/cli.js';
import { sh, writeRunbook } from '../../helpers/runbooks.js';
import {
  events,
  onlyRunDir,
  readJournalLines,
  snapshotDir,
  type Workspace,
  workspace,
} from '../../helpers/workspace.js';

// Each step refuses to start when failAt names it, so a failing step changes nothing itself; the
// steps before it each changed a file in a different way (create, append, rename, edit, delete).
function setup(ws: Workspace) {
  ws.write('files/log.txt', 'line one\nline two\n');
  ws.write('files/conf.txt', 'mode=old\n');
  ws.write('files/settings.ini', '[db]\nhost=old.internal\nport=3306\n');
  ws.write('files/obsolete.txt', 'remove me\n');
  const guard = (n: number) => `test "${'${params.failAt}'}" != ${n} &&`;
  return writeRunbook(ws.dir, {
    name: 'rollback-every-step',
    params: { dir: ws.filesDir, failAt: 0 },
    steps: [
      sh('create', `${guard(1)} printf 'created\\n' > \${params.dir}/new.txt`, {
        undo: 'rm -f ${params.dir}/new.txt',
      }),
      sh('append', `${guard(2)} echo appended >> \${params.dir}/log.txt`, {
        undo: "sed -i '/^appended$/d' ${params.dir}/log.txt",
      }),
      sh('rename', `${guard(3)} mv \${params.dir}/conf.txt \${params.dir}/conf.old`, {
        undo: 'mv ${params.dir}/conf.old ${params.dir}/conf.txt',
      }),
      sh('edit', `${guard(4)} sed -i 's/^port=3306$/port=3307/' \${params.dir}/settings.ini`, {
        undo: "sed -i 's/^port=3307$/port=3306/' ${params.dir}/settings.ini",
      }),
      sh('delete', `${guard(5)} mv \${params.dir}/obsolete.txt \${params.dir}/.obsolete.bak`, {
        undo: 'mv ${params.dir}/.obsolete.bak ${params.dir}/obsolete.txt',
      }),
      sh('last', `${guard(6)} true`, { rollback: 'none' }),
    ],
  });
}

const IDS = ['create', 'append', 'rename', 'edit', 'delete', 'last'];

/**
 * One undo rule: the list the in-process rollback journaled on its rollback-start equals what the
 * rule computes from the journal before it (what `cutover rollback` would undo), with the same undo.
 */
function expectOneUndoRule(runDir: string) {
  const records = readJournalLines(runDir) as unknown as JournalRecord[];
  const cut = records.findIndex((r) => r.type === 'rollback-start');
  expect(cut).toBeGreaterThan(0);
  const steps = (parse(readFileSync(join(runDir, 'runbook.yaml'), 'utf8')) as { steps: Step[] }).steps;
  const fromJournal = undoList(reconstruct(records.slice(0, cut)), steps, getKind);
  expect(fromJournal.map(({ stepId, via }) => ({ stepId, via }))).toEqual(records[cut]!.undo);
}

describe('rollback when step k fails', () => {
  let ws: Workspace | undefined;
  afterEach(() => ws?.cleanup());

  it('the steps really change the files when nothing fails', async () => {
    ws = workspace();
    const rb = setup(ws);
    const before = snapshotDir(ws.filesDir);
    const r = await runCli(['run', rb, '--execute', '--runs-dir', ws.runsDir], { cwd: ws.dir });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const after = snapshotDir(ws.filesDir);
    expect(after).not.toEqual(before);
    expect(Object.keys(after).sort()).toEqual([
      '.obsolete.bak',
      'conf.old',
      'log.txt',
      'new.txt',
      'settings.ini',
    ]);
  });

  it.each(IDS.map((id, i) => ({ k: i + 1, id })))(
    'step $k ($id) fails → files byte-identical, undo k-1..1 in order',
    async ({ k, id }) => {
      ws = workspace();
      const rb = setup(ws);
      const before = snapshotDir(ws.filesDir);
      const r = await runCli(['run', rb, '--execute', '--runs-dir', ws.runsDir, '--var', `failAt=${k}`], {
        cwd: ws.dir,
      });
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(snapshotDir(ws.filesDir)).toEqual(before);

      const journal = readJournalLines(onlyRunDir(ws.runsDir));
      const undoable = IDS.slice(0, k - 1).filter((s) => s !== 'last');
      const expected = [...undoable].reverse().flatMap((s) => [`undo-start ${s}`, `undo-done ${s}`]);
      expect(events(journal, ['undo-start', 'undo-done', 'undo-failed'])).toEqual(expected);
      expect(events(journal, ['step-failed'])).toEqual([`step-failed ${id}`]);
      expect(events(journal, ['step-done'])).toEqual(IDS.slice(0, k - 1).map((s) => `step-done ${s}`));
      // Every undo comes after the failure, and the run ends rolled back.
      const failedAt = journal.findIndex((l) => l.type === 'step-failed');
      expect(journal.findIndex((l) => l.type === 'undo-start')).toSatisfy(
        (i: number) => i === -1 || i > failedAt,
      );
      expect(journal.at(-1)).toMatchObject({ type: 'run-end', status: 'rolled-back', exitCode: 1 });
      expect(r.stdout).toContain('rolled-back (exit 1)');
      expectOneUndoRule(onlyRunDir(ws.runsDir));
    },
  );

  it('a step whose command ran but whose check failed is undone too', async () => {
    ws = workspace();
    ws.write('files/log.txt', 'base\n');
    const rb = writeRunbook(ws.dir, {
      name: 'check-fails-after-apply',
      params: { dir: ws.filesDir },
      steps: [
        sh('first', 'echo first >> ${params.dir}/log.txt', {
          undo: "sed -i '/^first$/d' ${params.dir}/log.txt",
        }),
        sh('second', 'echo second >> ${params.dir}/log.txt', {
          undo: "sed -i '/^second$/d' ${params.dir}/log.txt",
          // The change happened, but the check looks for something else: the step fails after apply.
          check: 'grep -qx third ${params.dir}/log.txt',
        }),
      ],
    });
    const before = snapshotDir(ws.filesDir);
    const r = await runCli(['run', rb, '--execute', '--runs-dir', ws.runsDir], { cwd: ws.dir });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(snapshotDir(ws.filesDir)).toEqual(before);
    const journal = readJournalLines(onlyRunDir(ws.runsDir));
    expect(events(journal, ['undo-start', 'undo-done'])).toEqual([
      'undo-start second',
      'undo-done second',
      'undo-start first',
      'undo-done first',
    ]);
    expectOneUndoRule(onlyRunDir(ws.runsDir));
  });

  it('an undo that keeps failing is retried by every `cutover rollback` until it works', async () => {
    ws = workspace();
    ws.write('files/log.txt', 'base\n');
    const rb = writeRunbook(ws.dir, {
      name: 'undo-fails',
      params: { dir: ws.filesDir },
      steps: [
        // Its undo only works once the operator has fixed things (created the "fixed" file).
        sh('first', 'echo first >> ${params.dir}/log.txt', {
          undo: "test -f ${params.dir}/../fixed && sed -i '/^first$/d' ${params.dir}/log.txt",
        }),
        sh('boom', 'exit 1'),
      ],
    });
    const before = snapshotDir(ws.filesDir);
    const r = await runCli(['run', rb, '--execute', '--runs-dir', ws.runsDir], { cwd: ws.dir });
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stdout).toMatch(/needs a human: \[first\]/);
    const runDir = onlyRunDir(ws.runsDir);
    for (let attempt = 0; attempt < 2; attempt++) {
      const again = await runCli(['rollback', runDir], { cwd: ws.dir });
      expect(again.code, again.stdout + again.stderr).toBe(3);
      expect(snapshotDir(ws.filesDir)).not.toEqual(before);
    }
    ws.write('fixed', '');
    const fixed = await runCli(['rollback', runDir], { cwd: ws.dir });
    expect(fixed.code, fixed.stdout + fixed.stderr).toBe(0);
    expect(snapshotDir(ws.filesDir)).toEqual(before);
    expect(events(readJournalLines(runDir), ['undo-failed', 'undo-done'])).toEqual([
      'undo-failed first',
      'undo-failed first',
      'undo-failed first',
      'undo-done first',
    ]);
  });

  it("rollback: { kind, with } replaces the kind's undo, and rollback: none is skipped and journaled", async () => {
    ws = workspace();
    ws.write('files/log.txt', 'base\n');
    const rb = writeRunbook(ws.dir, {
      name: 'rollback-overrides',
      params: { dir: ws.filesDir },
      steps: [
        sh('custom', 'echo custom >> ${params.dir}/log.txt', {
          undo: 'echo WRONG >> ${params.dir}/log.txt',
          rollback: { kind: 'shell.run', with: { command: "sed -i '/^custom$/d' ${params.dir}/log.txt" } },
        }),
        sh('note', 'echo noted > ${params.dir}/../note.txt', { rollback: 'none' }),
        sh('boom', 'exit 1'),
      ],
    });
    const before = snapshotDir(ws.filesDir);
    const r = await runCli(['run', rb, '--execute', '--runs-dir', ws.runsDir], { cwd: ws.dir });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(snapshotDir(ws.filesDir)).toEqual(before);
    expect(ws.read('note.txt')).toBe('noted\n');
    expect(events(readJournalLines(onlyRunDir(ws.runsDir)), ['undo-skipped', 'undo-done'])).toEqual([
      'undo-skipped note',
      'undo-done custom',
    ]);
    expectOneUndoRule(onlyRunDir(ws.runsDir));
  });
});
