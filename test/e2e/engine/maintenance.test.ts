// The maintenance budget, with the real maintenance.enter / maintenance.exit kinds against a
// local HTTP "application" that answers 503 while a maintenance file exists.
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { getKind } from '../../../src/steps/registry.js';
import { runCli, runCliUntil } from '../../helpers/cli.js';
import { type StepSpec, sh, writeRunbook } from '../../helpers/runbooks.js';
import { events, onlyRunDir, readJournalLines, type Workspace, workspace } from '../../helpers/workspace.js';

const registered = !!getKind('maintenance.enter') && !!getKind('maintenance.exit');

let ws: Workspace | undefined;
let server: Server | undefined;
afterEach(() => {
  server?.close();
  ws?.cleanup();
  ws = undefined;
});

async function app(flag: string): Promise<string> {
  server = createServer((_req, res) => {
    if (existsSync(flag)) res.writeHead(503).end('down for maintenance');
    else res.writeHead(200).end('shop');
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

async function runbook(budget: string, middle: StepSpec[]) {
  ws = workspace();
  ws.write('files/out.txt', 'start\n');
  const flag = ws.path('maintenance-on');
  const url = await app(flag);
  const paths = [{ name: 'web', url, timeout: '2s' }];
  return writeRunbook(ws.dir, {
    name: 'budget',
    params: { dir: ws.filesDir, flag },
    maintenance: { budget },
    steps: [
      sh('before', 'echo before >> ${params.dir}/out.txt', {
        undo: "sed -i '/^before$/d' ${params.dir}/out.txt",
      }),
      {
        id: 'enter',
        kind: 'maintenance.enter',
        with: {
          command: 'touch ${params.flag}',
          undoCommand: 'rm -f ${params.flag}',
          paths,
          timeout: '5s',
          interval: '50ms',
        },
      },
      ...middle,
      {
        id: 'exit',
        kind: 'maintenance.exit',
        with: {
          command: 'rm -f ${params.flag}',
          undoCommand: 'touch ${params.flag}',
          paths,
          timeout: '5s',
          interval: '50ms',
        },
      },
    ],
  });
}

describe.runIf(registered)('maintenance budget', () => {
  it('steps that overrun a tiny budget fail the run, which rolls back (maintenance off again)', async () => {
    const rb = await runbook('1s', [sh('slow', 'sleep 20', { rollback: 'none' })]);
    const r = await runCli(['run', rb, '--execute', '--runs-dir', ws!.runsDir], { cwd: ws!.dir });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.durationMs).toBeLessThan(10_000);
    expect(r.stdout).toMatch(/maintenance over-budget/);
    expect(r.stdout).toMatch(/maintenance budget of 1\.0s exceeded/);
    expect(existsSync(ws!.path('maintenance-on'))).toBe(false);
    expect(ws!.read('files/out.txt')).toBe('start\n');
    const journal = readJournalLines(onlyRunDir(ws!.runsDir));
    expect(journal.find((l) => l.type === 'step-failed')).toMatchObject({
      stepId: 'slow',
      error: { code: 'MAINTENANCE_BUDGET_EXCEEDED' },
    });
    expect(events(journal, ['undo-done'])).toEqual(['undo-done enter', 'undo-done before']);
    expect(journal.at(-1)).toMatchObject({ type: 'run-end', status: 'rolled-back', exitCode: 1 });
  });

  it('killed inside the window and resumed: the time already spent counts, and over budget it rolls back', async () => {
    // 2 s of work fits a 4 s budget on its own; with the 2.5 s the run lay dead it does not.
    const rb = await runbook('4s', [
      sh('work', 'touch ${params.flag}-marker; sleep 2', { undo: 'rm -f ${params.flag}-marker' }),
    ]);
    const killed = await runCliUntil(['run', rb, '--execute', '--runs-dir', ws!.runsDir], {
      cwd: ws!.dir,
      markerFile: ws!.path('maintenance-on-marker'),
    });
    expect(killed.signal).toBe('SIGKILL');
    expect(existsSync(ws!.path('maintenance-on'))).toBe(true);
    await new Promise((r) => setTimeout(r, 2500));
    const runDir = onlyRunDir(ws!.runsDir);
    const r = await runCli(['resume', runDir, '--yes'], { cwd: ws!.dir });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/maintenance has been on since/);
    expect(r.stdout).toMatch(/maintenance budget of 4\.0s exceeded/);
    expect(r.durationMs).toBeLessThan(4000);
    expect(existsSync(ws!.path('maintenance-on'))).toBe(false);
    expect(ws!.read('files/out.txt')).toBe('start\n');
    const status = JSON.parse((await runCli(['status', runDir, '--json'])).stdout);
    expect(status).toMatchObject({ status: 'rolled-back', maintenance: { on: false } });
  });

  it('within the budget: the time in maintenance is tracked and journaled', async () => {
    const rb = await runbook('30s', [sh('quick', 'sleep 0.2', { rollback: 'none' })]);
    const r = await runCli(['run', rb, '--execute', '--runs-dir', ws!.runsDir], { cwd: ws!.dir });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/maintenance entered at 00:00 of 00:30 budget/);
    expect(r.stdout).toMatch(/succeeded \(exit 0\) in .*, maintenance \d/);
    const journal = readJournalLines(onlyRunDir(ws!.runsDir));
    const exited = journal.find((l) => l.type === 'maintenance' && l.state === 'exited')!;
    expect(exited.elapsedMs).toBeGreaterThanOrEqual(200);
    expect(exited.elapsedMs).toBeLessThan(30_000);
    expect(journal.at(-1)!.maintenanceMs).toBeGreaterThanOrEqual(200);
    const status = JSON.parse((await runCli(['status', onlyRunDir(ws!.runsDir), '--json'])).stdout);
    expect(status.maintenance).toMatchObject({
      enteredAt: expect.any(String),
      exitedAt: expect.any(String),
      budgetMs: 30_000,
    });
  });
});
