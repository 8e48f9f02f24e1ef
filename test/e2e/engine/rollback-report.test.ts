// Issue 13, through the built CLI: what a rollback prints is what it did and what the shell sees.
// `cutover rollback` prints the exit code it exits with; a shell.run step without `undo` is left as
// it is and listed for a human, never called rolled back; the "needs a human" lines say what to do.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/cli.js';
import { sh, writeRunbook } from '../../helpers/runbooks.js';
import { events, onlyRunDir, readJournalLines, type Workspace, workspace } from '../../helpers/workspace.js';

let ws: Workspace | undefined;
afterEach(() => ws?.cleanup());

describe('rollback reports (issue 13)', () => {
  it('a shell.run without undo is left as it is and needs a human (exit 3), not "rolled back"', async () => {
    ws = workspace();
    ws.write('files/log.txt', 'base\n');
    const rb = writeRunbook(ws.dir, {
      name: 'no-undo',
      params: { dir: ws.filesDir },
      steps: [
        sh('note', 'echo noted > ${params.dir}/note.txt'),
        sh('change', 'echo change >> ${params.dir}/log.txt', {
          undo: "sed -i '/^change$/d' ${params.dir}/log.txt",
        }),
        sh('boom', 'exit 1'),
      ],
    });
    const r = await runCli(['run', rb, '--execute', '--runs-dir', ws.runsDir], { cwd: ws.dir });
    expect(r.code, r.stdout + r.stderr).toBe(3);
    // The step with an undo was undone; the one without is still in place.
    expect(readFileSync(ws.path('files/log.txt'), 'utf8')).toBe('base\n');
    expect(readFileSync(ws.path('files/note.txt'), 'utf8')).toBe('noted\n');
    expect(r.stdout).toMatch(/rollback-incomplete \(exit 3\)/);
    expect(r.stdout).toMatch(
      /needs a human: \[note\] shell\.run: left as it is: shell\.run has no undo here — reverse by hand what this command did \(it has no undo\): echo noted > .*note\.txt/,
    );
    expect(r.stdout).not.toMatch(/needs a human: \[change\]/);
    const journal = readJournalLines(onlyRunDir(ws.runsDir));
    expect(events(journal, ['undo-done', 'undo-skipped'])).toEqual(['undo-done change', 'undo-skipped note']);
    expect(journal.find((l) => l.type === 'undo-skipped')).toMatchObject({
      reason: 'left as it is: shell.run has no undo here',
    });
    const status = JSON.parse((await runCli(['status', onlyRunDir(ws.runsDir), '--json'])).stdout);
    expect(status).toMatchObject({ status: 'rollback-incomplete', exitCode: 3, toUndo: [] });
    expect(status.next).toMatch(
      /^put back by hand what the steps left as they are \(no undo\) changed: `cutover report /,
    );
    const report = await runCli(['report', onlyRunDir(ws.runsDir)]);
    expect(report.stdout).toMatch(
      /## Needs a human\n\n- \*\*note\*\* \(`shell\.run`\): left as it is: shell\.run has no undo here\n {2}- reverse by hand what this command did/,
    );
    // Said once: a later `cutover rollback` has nothing left that it could undo.
    const again = await runCli(['rollback', onlyRunDir(ws.runsDir)], { cwd: ws.dir });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toMatch(/rolled-back \(exit 0\)/);
  });

  it('cutover rollback after a halt past the point of no return prints the exit code it exits with', async () => {
    ws = workspace();
    ws.write('files/log.txt', 'base\n');
    const rb = writeRunbook(ws.dir, {
      name: 'halt-then-rollback',
      params: { dir: ws.filesDir },
      steps: [
        sh('first', 'echo first >> ${params.dir}/log.txt', {
          undo: "sed -i '/^first$/d' ${params.dir}/log.txt",
        }),
        sh('flip', 'echo flip >> ${params.dir}/log.txt', {
          undo: "sed -i '/^flip$/d' ${params.dir}/log.txt",
          pointOfNoReturn: true,
        }),
        sh('boom', 'exit 1'),
      ],
    });
    const r = await runCli(['run', rb, '--execute', '--runs-dir', ws.runsDir], { cwd: ws.dir });
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stdout).toMatch(/halted \(exit 3\)/);
    // What to do by hand, not what the step did.
    expect(r.stdout).toMatch(/needs a human: \[flip\] shell\.run: .* — run the undo command by hand: sed -i/);
    const runDir = onlyRunDir(ws.runsDir);
    const rollback = await runCli(['rollback', runDir, '--yes'], { cwd: ws.dir });
    expect(rollback.code, rollback.stdout + rollback.stderr).toBe(0);
    expect(rollback.stdout).toMatch(/rolled-back \(exit 0\)/);
    expect(rollback.stdout).not.toMatch(/\(exit [1-9]\)/);
    expect(readJournalLines(runDir).at(-1)).toMatchObject({
      type: 'run-end',
      status: 'rolled-back',
      exitCode: 0,
    });
    expect(readFileSync(ws.path('files/log.txt'), 'utf8')).toBe('base\n');
  });
});
