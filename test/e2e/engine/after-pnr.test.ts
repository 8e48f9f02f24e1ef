// A late failure after the data has moved (issue 12, C6): runbooks/sandbox.yaml by the built CLI
// against the test sandbox, failing `smoke` (after the flip) with an after-step hook. By default the
// run stops (exit 3) instead of rolling the data back on its own; status says maintenance is still
// on; `cutover rollback` then undoes it on purpose, and status says maintenance is off.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureSandboxState, resetSandbox, type SandboxEnv } from '../../../src/sandbox/index.js';
import {
  cli,
  failAfter,
  journalOf,
  removeTemps,
  runArgs,
  show,
  tempDir,
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

describe('a failure after the point of no return', () => {
  it('stops with exit 3, nothing undone; `cutover rollback` then restores the start state', async () => {
    await resetSandbox(env);
    const before = await captureSandboxState(env);
    const runsDir = tempDir('runs');
    const r = await cli(env, runArgs(runsDir, failAfter('smoke')));
    expect(r.code, show(r)).toBe(3);
    const { runDir, lines } = journalOf(runsDir);
    expect(lines.at(-1)).toMatchObject({ type: 'run-end', status: 'halted', exitCode: 3 });
    expect(String(lines.at(-1)!.message)).toMatch(/Past the point of no return \("flip-dns"\)/);
    expect(lines.filter((l) => l.type === 'undo-start')).toEqual([]);
    // The cutover stands as it was when smoke failed: maintenance on, as status says.
    expect((await captureSandboxState(env)).maintenance.enabled).toBe(true);
    const during = await cli(env, ['status', runDir, '--json']);
    expect(JSON.parse(during.stdout).maintenance.on).toBe(true);
    expect((await cli(env, ['status', runDir])).stdout).toMatch(/maintenance ON since/);

    const rb = await cli(env, ['rollback', runDir, '--yes', '--plain']);
    expect(rb.code, show(rb)).toBe(0);
    expect(await captureSandboxState(env)).toEqual(before);
    const after = await cli(env, ['status', runDir, '--json']);
    const view = JSON.parse(after.stdout);
    expect(view.status).toBe('rolled-back');
    expect(view.maintenance.on).toBe(false);
    expect((await cli(env, ['status', runDir])).stdout).not.toMatch(/NOT exited|maintenance ON/);
  });
});
