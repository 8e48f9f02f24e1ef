// The MySQL kinds through the real engine (journal, snapshots read back, rollback), from a runbook.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSession } from '../../../src/session.js';
import { resetAroundEach, testEnv } from './env.js';
import { connect, serverState } from './harness.js';

const env = testEnv();

const DATABASES = `
databases:
  old: { host: "\${env.SANDBOX_OLD_DB_HOST}", port: "\${env.SANDBOX_DB_PORT}", user: "\${env.SANDBOX_DB_USER}", password: { env: SANDBOX_DB_PASSWORD } }
  new: { host: "\${env.SANDBOX_NEW_DB_HOST}", port: "\${env.SANDBOX_DB_PORT}", user: "\${env.SANDBOX_DB_USER}", password: { env: SANDBOX_DB_PASSWORD } }
  repl: { host: "\${env.SANDBOX_NEW_DB_HOST}", port: "\${env.SANDBOX_DB_PORT}", user: "\${env.SANDBOX_DB_USER}", password: { env: SANDBOX_DB_PASSWORD } }
`;

describe.skipIf(!env)('MySQL kinds in a runbook, through the engine', () => {
  const e = env!;
  let dir: string;
  const file = (name: string, steps: string) => {
    const f = join(dir, `${name}.yaml`);
    writeFileSync(f, `version: 1\nname: ${name}\n${DATABASES}\nsteps:\n${steps}`);
    return f;
  };
  let events: Record<string, unknown>[] = [];
  // Run ids have second resolution per process: plan and run get separate runs dirs.
  const run = (what: Parameters<typeof runSession>[0], runs = 'runs') => {
    events = [];
    return runSession(what, {
      runsDir: join(dir, runs),
      yes: true,
      render: 'json',
      onEvent: (ev) => events.push(ev as never),
    });
  };
  const failures = () =>
    events
      .filter((ev) => ev.type === 'step' && ev.state === 'failed')
      .map((ev) => (ev.error as { message: string }).message);

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cutover-mysql-e2e-'));
    Object.assign(process.env, e);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  resetAroundEach(e);

  it('a stopped SQL thread fails mysql.replica-lag and the run rolls back the freeze', async () => {
    const n = await connect(e, 'new');
    const o = await connect(e, 'old');
    try {
      await n.query('STOP SLAVE SQL_THREAD');
      const f = file(
        'lag-fails',
        `  - { id: freeze, kind: mysql.read-only, with: { on: old } }
  - { id: lag, kind: mysql.replica-lag, with: { replica: new, source: old, timeout: 5s } }
`,
      );
      const r = await run({ mode: 'run', file: f });
      expect(r.status).toBe('rolled-back');
      expect(r.exitCode).toBe(1);
      expect(r.message).toMatch(
        /step "lag" failed: database "new" \(.+\): the replication SQL thread is not running/,
      );
      expect((await serverState(o)).readOnly).toBe('0');
    } finally {
      await n.end();
      await o.end();
    }
  }, 60_000);

  it('a whole cutover, then `rollback` from the journal: both servers as they were, no secret in the journal', async () => {
    const o = await connect(e, 'old');
    const n = await connect(e, 'new');
    try {
      const before = { old: await serverState(o), new: await serverState(n) };
      const f = file(
        'cutover',
        `  - { id: lag, kind: mysql.replica-lag, with: { replica: new, source: old, maxLagSeconds: 1 } }
  - { id: drain, kind: mysql.connections.drain, with: { on: old, allowUsers: ["\${env.SANDBOX_DB_USER}"], kill: true, grace: 200ms, quiet: 500ms } }
  - { id: stop, kind: mysql.replication.stop, with: { source: old, replica: new } }
  - { id: reverse, kind: mysql.replication.reverse, with: { source: new, replica: old, replicationAccount: repl } }
  - { id: check, kind: mysql.query, with: { on: new, sql: "SELECT @@read_only", expect: { equals: 0 } } }
`,
      );
      const plan = await run({ mode: 'plan', file: f }, 'plans');
      // The plan reads for real; the final check cannot pass before the recorded writes happen:
      // the engine reports what it sees today without failing the plan.
      expect(failures()).toEqual([]);
      expect(plan.exitCode).toBe(0);
      expect(
        events.filter((ev) => ev.type === 'log' && ev.stepId === 'check').map((ev) => ev.message),
      ).toEqual([
        expect.stringMatching(
          /today it says: database "new" \(.+\): first value is "1", expected 0 \(SELECT @@read_only\)$/,
        ),
      ]);
      const planned = events.filter((ev) => ev.type === 'plan').flatMap((ev) => ev.lines as string[]);
      expect(planned).toEqual(
        expect.arrayContaining([
          'would SET GLOBAL read_only = ON on old: freeze the source (OFF → ON)',
          'would run START REPLICA on old',
        ]),
      );
      expect({ old: await serverState(o), new: await serverState(n) }).toEqual(before);

      const r = await run({ mode: 'run', file: f });
      expect(r.message).toBe('cutover complete');
      expect(r.exitCode).toBe(0);
      expect(await serverState(n)).toMatchObject({ readOnly: '0', io: 'No' });
      expect(await serverState(o)).toMatchObject({
        readOnly: '1',
        io: 'Yes',
        masterHost: e.SANDBOX_NEW_DB_HOST,
      });
      const journal = readFileSync(join(r.runDir, 'journal.jsonl'), 'utf8');
      expect(journal).not.toContain(e.SANDBOX_DB_PASSWORD!);
      expect(journal).toContain('"sourceGtid"');

      const rb = await run({ mode: 'rollback', runDir: r.runDir });
      expect(rb.status).toBe('rolled-back');
      const after = { old: await serverState(o), new: await serverState(n) };
      // The heartbeat the lag check wrote is the only change, replicated to both.
      expect(after.old).toMatchObject({ readOnly: before.old.readOnly, io: null });
      expect(after.new).toMatchObject({
        readOnly: before.new.readOnly,
        io: 'Yes',
        sql: 'Yes',
        masterHost: before.new.masterHost,
      });
      expect(after.new.gtidSlavePos).toBe(after.old.gtidBinlogPos);
    } finally {
      await o.end();
      await n.end();
    }
  }, 90_000);
});
