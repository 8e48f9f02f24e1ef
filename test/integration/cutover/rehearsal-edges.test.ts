// A rehearsal whose canary load cannot write, or writes to the wrong side, must say so before the
// cutover starts, and end: it used to start the run anyway (and when the run then threw, its
// writers kept the process alive, retrying forever; on a sandbox an earlier run had cut over, it
// reported every write lost). And one that halts past the point of no return counts its writes
// where the application left them: on the new primary. The built CLI and the sandbox's runbook.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RehearsalResult } from '../../../src/rehearse/rehearse.js';
import { resetSandbox, type SandboxEnv } from '../../../src/sandbox/index.js';
import { captureSandboxState } from '../../../src/sandbox/state.js';
import { sandboxEnv } from '../../setup/sandbox-env.js';
import { cli, RUNBOOK, removeTemps, runArgs, tempDir } from './harness.js';

let env: SandboxEnv;

beforeAll(async () => {
  env = sandboxEnv();
  await resetSandbox(env);
});
afterAll(async () => {
  await resetSandbox(env);
  removeTemps();
});

it('a load that cannot log in: exit 2 before the first step, the sandbox as it was', async () => {
  const before = await captureSandboxState(env);
  const runsDir = tempDir('rehearsal-refused');
  const r = await cli(
    { ...env, SANDBOX_APP_DB_PASSWORD: 'not-the-app-password' } as SandboxEnv,
    ['rehearse', RUNBOOK, '--plain', '--runs-dir', runsDir],
    60_000,
  );
  // A hang ends in the helper's SIGKILL, with no exit code.
  expect(r.signal).toBeNull();
  expect(r.code, r.stdout + r.stderr).toBe(2);
  expect(r.stderr).toMatch(
    /canary load cannot write \(database "app" .*access denied for user app.*\); the cutover did not start/,
  );
  expect(r.stdout + r.stderr).not.toMatch(/\[disable-crons\]/);
  expect(await captureSandboxState(env)).toEqual(before);
});

it('a sandbox an earlier run cut over: exit 2 naming the server the load reached, nothing run', async () => {
  const runsDir = tempDir('rehearsal-cut-over');
  const first = await cli(env, runArgs(runsDir));
  expect(first.code, first.stderr).toBe(0);
  const before = await captureSandboxState(env);
  const r = await cli(env, ['rehearse', RUNBOOK, '--plain', '--runs-dir', runsDir], 60_000);
  expect(r.code, r.stdout + r.stderr).toBe(2);
  expect(r.stderr).toMatch(
    /canary load reaches server_id \d+, not "old" \(server_id \d+\): an earlier run left this environment cut over/,
  );
  expect(r.stdout + r.stderr).not.toMatch(/\[disable-crons\]/);
  expect(await captureSandboxState(env)).toEqual(before);
});

it('a rehearsal halted past the point of no return: exit 3, every acknowledged write on new', async () => {
  await resetSandbox(env);
  const runsDir = tempDir('rehearsal-halted');
  const r = await cli(
    { ...env, CUTOVER_TEST_FAULT: 'smoke:apply:1:fail' } as SandboxEnv,
    ['rehearse', RUNBOOK, '--json', '--runs-dir', runsDir],
    90_000,
  );
  expect(r.code, r.stderr).toBe(3);
  const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as RehearsalResult;
  expect(result.status).toBe('halted');
  expect(result.acknowledgedWrites).toBeGreaterThan(0);
  // Counted on the old primary (as it was before), the writes taken after the flip would all be "lost".
  expect(result.lostWrites).toBe(0);
});
