// The run survives its operator's terminal (issue 12): runbooks/sandbox.yaml by the built CLI
// against the test sandbox. An SSH drop (SIGHUP to the CLI) and a reader that closes early (`| head`:
// EPIPE on stdout) in the middle of the maintenance window: the run goes on to the end, its output
// in RUN_DIR/output.log, said on stderr and in the journal — or rolls back when the runbook says
// `rollback: { onHangup: rollback }`. Never a dead process with maintenance left on.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureSandboxState, resetSandbox, type SandboxEnv } from '../../../src/sandbox/index.js';
import {
  cli,
  journalHas,
  journalOf,
  killGroup,
  RUNBOOK,
  removeTemps,
  runArgs,
  startDetached,
  tempDir,
  waitWhileRunning,
} from '../../integration/cutover/harness.js';
import { sandboxEnv } from '../../setup/sandbox-env.js';

let env: SandboxEnv;
beforeAll(() => {
  env = sandboxEnv();
});
afterAll(async () => {
  await resetSandbox(env);
  removeTemps();
});

const inWindow = (runsDir: string) => () =>
  journalHas(runsDir, (l) => l.type === 'step-done' && l.stepId === 'enter-maintenance');

async function finished(run: ReturnType<typeof startDetached>) {
  const timer = setTimeout(() => killGroup(run.pid), 110_000);
  try {
    return await run.done;
  } finally {
    clearTimeout(timer);
  }
}

describe('the run survives its terminal', () => {
  it('SIGHUP mid-window: the run finishes, output goes to output.log, maintenance ends off', async () => {
    await resetSandbox(env);
    const runsDir = tempDir('runs');
    const run = startDetached(env, runArgs(runsDir));
    await waitWhileRunning(run, inWindow(runsDir), 'maintenance entered');
    run.child.kill('SIGHUP'); // the CLI only, as an SSH drop's hangup reaches the session leader
    const r = await finished(run);
    expect(r, run.output()).toEqual({ code: 0, signal: null });

    const { runDir, lines } = journalOf(runsDir);
    expect(lines.at(-1)).toMatchObject({ type: 'run-end', status: 'succeeded' });
    const redirected = lines.find((l) => l.type === 'output-redirected');
    expect(redirected).toMatchObject({ cause: 'SIGHUP', log: join(runDir, 'output.log') });
    // The steps after the hangup happened (journaled) and their output went to the log.
    const hupAt = lines.indexOf(redirected!);
    expect(lines.slice(hupAt).some((l) => l.type === 'step-done' && l.stepId === 'exit-maintenance')).toBe(
      true,
    );
    const log = readFileSync(join(runDir, 'output.log'), 'utf8');
    expect(log).toMatch(/succeeded \(exit 0\)/);
    expect(run.output()).toContain(`output continues in ${join(runDir, 'output.log')}`);
    const status = JSON.parse((await cli(env, ['status', runDir, '--json'])).stdout);
    expect(status).toMatchObject({ outputLog: join(runDir, 'output.log'), maintenance: { on: false } });
    expect((await captureSandboxState(env)).maintenance.enabled).toBe(false);
  });

  it('a reader that closes early (EPIPE): the run finishes instead of dying mid-window', async () => {
    await resetSandbox(env);
    const runsDir = tempDir('runs');
    const run = startDetached(env, runArgs(runsDir));
    await waitWhileRunning(run, inWindow(runsDir), 'maintenance entered');
    // `| head -1` has read its line and exits: the pipe's read end closes; the next write gets EPIPE.
    run.child.stdout!.destroy();
    const r = await finished(run);
    expect(r, run.output()).toEqual({ code: 0, signal: null });
    const { runDir, lines } = journalOf(runsDir);
    expect(lines.at(-1)).toMatchObject({ type: 'run-end', status: 'succeeded' });
    expect(lines.find((l) => l.type === 'output-redirected')).toMatchObject({ cause: 'EPIPE on output' });
    expect(existsSync(join(runDir, 'output.log'))).toBe(true);
    expect((await captureSandboxState(env)).maintenance.enabled).toBe(false);
  });

  it('with `rollback: { onHangup: rollback }`: SIGHUP rolls back as SIGTERM does, to the start state', async () => {
    await resetSandbox(env);
    const before = await captureSandboxState(env);
    const dir = tempDir('rb');
    // The same runbook with the option; its env comes from the sandbox's env as for the original.
    const text = readFileSync(RUNBOOK, 'utf8').replace(/^envFiles:.*$/m, 'rollback: { onHangup: rollback }');
    const file = join(dir, 'sandbox-hup.yaml');
    writeFileSync(file, text);
    const runsDir = tempDir('runs');
    const args = runArgs(runsDir);
    args[1] = file;
    const run = startDetached(env, args);
    await waitWhileRunning(run, inWindow(runsDir), 'maintenance entered');
    run.child.kill('SIGHUP');
    const r = await finished(run);
    expect(r, run.output()).toEqual({ code: 1, signal: null });
    const { lines } = journalOf(runsDir);
    expect(lines.at(-1)).toMatchObject({ type: 'run-end', status: 'rolled-back' });
    expect(lines.some((l) => l.type === 'output-redirected')).toBe(true);
    expect(lines.filter((l) => l.type === 'undo-done').map((l) => l.stepId)).toContain('enter-maintenance');
    expect(await captureSandboxState(env)).toEqual(before);
  });
});
