// A rehearsal whose canary load cannot write must say so before the cutover starts, and end: it
// used to start the run anyway, and when the run then threw, its writers kept the process alive
// (retrying forever). The built CLI, the sandbox's runbook, the app account's password made wrong.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { resetSandbox, type SandboxEnv } from '../../../src/sandbox/index.js';
import { captureSandboxState } from '../../../src/sandbox/state.js';
import { sandboxEnv } from '../../setup/sandbox-env.js';
import { cli, RUNBOOK, removeTemps, tempDir } from './harness.js';

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
