// mysql.replica-lag as a before: check, through the built CLI against the sandbox: without
// `writes: heartbeat` validate and run refuse at the check's line (exit 2, one line, nothing run);
// with it, the plan says what the check writes and the run writes only the heartbeat on the source.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, runCli, stackLines } from '../../helpers/cli.js';
import { sandboxEnv } from '../../setup/sandbox-env.js';

const runbook = (writes: string) => `version: 1
name: lag-check
databases:
  old: { host: "\${env.SANDBOX_OLD_DB_HOST}", port: "\${env.SANDBOX_DB_PORT}", user: "\${env.SANDBOX_DB_USER}", password: { env: SANDBOX_DB_PASSWORD } }
  new: { host: "\${env.SANDBOX_NEW_DB_HOST}", port: "\${env.SANDBOX_DB_PORT}", user: "\${env.SANDBOX_DB_USER}", password: { env: SANDBOX_DB_PASSWORD } }
steps:
  - id: settle
    kind: wait
    with: { duration: 50ms }
    before:
      - kind: mysql.replica-lag${writes}
        with: { replica: new, source: old, maxLagSeconds: 5, timeout: 20s }
`;

describe('a check that writes, through the CLI', () => {
  let dir: string;
  const env = () => sandboxEnv() as unknown as Record<string, string>;
  beforeAll(() => {
    assertBuilt();
    dir = mkdtempSync(join(tmpdir(), 'cutover-check-writes-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('unacknowledged: validate and run exit 2 at FILE:LINE:COL, saying what to add; nothing runs', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, runbook(''));
    for (const args of [
      ['validate', file],
      ['run', file, '--execute', '--yes', '--runs-dir', join(dir, 'runs')],
    ]) {
      const r = await runCli(args, { env: env() });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(
        `${file}:11:15 this before check is not read-only: mysql.replica-lag writes on old`,
      );
      expect(r.stderr).toContain('add `writes: heartbeat` to the check');
      expect(stackLines(r.stderr)).toEqual([]);
    }
    expect(existsSync(join(dir, 'runs')), 'no run directory: nothing ran').toBe(false);
  });

  it('acknowledged: kinds and plan say what it writes; the run passes', async () => {
    const kinds = await runCli(['kinds']);
    expect(kinds.stdout).toMatch(
      /mysql\.replica-lag .*not read-only: writes on the source.*`writes: heartbeat`/,
    );
    const one = await runCli(['kinds', 'mysql.replica-lag']);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toMatch(/\n {2}writes: writes on the source/);
    expect(one.stdout).toMatch(/\nwith:\n[\s\S]*maxLagSeconds +number/);
    const unknown = await runCli(['kinds', 'mysql.replica-lagg']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe(
      'cutover: unknown step kind "mysql.replica-lagg" — did you mean "mysql.replica-lag"? (`cutover kinds` lists them)\n',
    );
    const file = join(dir, 'ok.yaml');
    writeFileSync(file, runbook('\n        writes: heartbeat'));
    const plan = await runCli(['plan', file, '--plain', '--runs-dir', join(dir, 'plans')], { env: env() });
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
    // The check's writes are in the plan as recorded writes on the source (create on a fresh one).
    expect(plan.stdout).toMatch(
      /\[settle\] +would (create table|update heartbeat) cutover\.heartbeat on old/,
    );
    const run = await runCli(
      ['run', file, '--execute', '--yes', '--plain', '--runs-dir', join(dir, 'runs')],
      {
        env: env(),
      },
    );
    expect(run.code, run.stdout + run.stderr).toBe(0);
  });
});
