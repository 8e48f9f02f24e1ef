import { describe, expect, it } from 'vitest';
import { resetAroundEach, testEnv } from './env.js';
import { connect, createHarness, fails, one, runStep } from './harness.js';

const env = testEnv();

describe.skipIf(!env)('mysql.replica-lag on the sandbox', () => {
  const e = env!;
  resetAroundEach(e);

  it('measures lag from its own UTC heartbeat on old, read on new', async () => {
    const h = createHarness({ mode: 'live', env: e });
    const run = await runStep(h, 'mysql.replica-lag', {
      replica: 'new',
      source: 'old',
      maxLagSeconds: 1,
      interval: '200ms',
    }).finally(() => h.close());
    expect(run.outputs).toMatchObject({ method: 'heartbeat', ioRunning: true, sqlRunning: true });
    expect(run.outputs.lagSeconds).toBeLessThanOrEqual(1);
    // The heartbeat table lives in the `cutover` schema, stamped in UTC with old's server_id.
    const n = await connect(e, 'new');
    try {
      const row = await one<{ server_id: number; skew: number }>(
        n,
        'SELECT server_id, ABS(TIMESTAMPDIFF(SECOND, ts, UTC_TIMESTAMP())) AS skew FROM cutover.heartbeat',
      );
      expect(row.server_id).toBe(1);
      expect(Number(row.skew)).toBeLessThan(30);
    } finally {
      await n.end();
    }
  }, 60_000);

  it('fails at once when the SQL thread is stopped', async () => {
    const n = await connect(e, 'new');
    await n.query('STOP SLAVE SQL_THREAD');
    await n.end();
    const h = createHarness({ mode: 'live', env: e });
    const err = await fails(
      runStep(h, 'mysql.replica-lag', { replica: 'new', source: 'old', timeout: '20s' }).finally(() =>
        h.close(),
      ),
    );
    expect(err.code).toBe('REPLICA_SQL_STOPPED');
    expect(err.message).toMatch(
      /^database "new" \(.+\): the replication SQL thread is not running \(IO thread Yes, SQL thread No/,
    );
  }, 60_000);

  it('fails when the IO thread is stopped, whatever Seconds_Behind says', async () => {
    const n = await connect(e, 'new');
    await n.query('STOP SLAVE IO_THREAD');
    const st = await one<Record<string, unknown>>(n, 'SHOW SLAVE STATUS');
    await n.end();
    // MariaDB shows NULL here (MySQL can show 0); the Seconds_Behind-only check must not pass either.
    expect(st.Seconds_Behind_Master === null || Number(st.Seconds_Behind_Master) === 0).toBe(true);
    for (const withSource of [true, false]) {
      const h = createHarness({ mode: 'live', env: e });
      const err = await fails(
        runStep(h, 'mysql.replica-lag', {
          replica: 'new',
          ...(withSource ? { source: 'old' } : {}),
          timeout: '20s',
        }).finally(() => h.close()),
      );
      expect(err.code).toBe('REPLICA_IO_STOPPED');
      expect(err.message).toContain('the replication IO thread is not running (IO thread No, SQL thread Yes');
    }
  }, 60_000);

  it('fails with the figures when the lag stays above the limit', async () => {
    // A first healthy run leaves a stamp on new; then new applies everything 30s late.
    const h0 = createHarness({ mode: 'live', env: e });
    await runStep(h0, 'mysql.replica-lag', { replica: 'new', source: 'old', interval: '200ms' }).finally(() =>
      h0.close(),
    );
    const n = await connect(e, 'new');
    await n.query('STOP SLAVE');
    await n.query('CHANGE MASTER TO MASTER_DELAY = 30');
    await n.query('START SLAVE');
    await n.end();
    // Stamps written from now on stay 30s away from new: its newest one ages.
    await new Promise((r) => setTimeout(r, 1000));
    const h = createHarness({ mode: 'live', env: e });
    const err = await fails(
      runStep(h, 'mysql.replica-lag', {
        replica: 'new',
        source: 'old',
        maxLagSeconds: 0.5,
        timeout: '2s',
        interval: '200ms',
      }).finally(() => h.close()),
    );
    expect(err.code).toBe('REPLICA_LAG_TOO_HIGH');
    const m =
      /^database "new" \(.+\): lag (\d+\.\d{3})s \(heartbeat: heartbeat not yet replicated; IO thread Yes, SQL thread Yes, Seconds_Behind \w+\) — still above 0\.5s after 2\.0s$/.exec(
        err.message,
      );
    expect(m, err.message).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(2.5);
    expect((err as unknown as { details: { lagSeconds: number } }).details.lagSeconds).toBeGreaterThanOrEqual(
      2.5,
    );
  }, 60_000);

  it('dry run creates nothing: the table and the stamps are recorded, the lag read for real', async () => {
    const h = createHarness({ mode: 'dry', env: e });
    const run = await runStep(h, 'mysql.replica-lag', { replica: 'new', source: 'old' }).finally(() =>
      h.close(),
    );
    expect(h.planLines()).toEqual([
      'would create schema cutover on old: for the heartbeat table',
      'would create table cutover.heartbeat on old: heartbeat rows stamped in UTC, read on the replica',
    ]);
    expect(run.outputs).toMatchObject({ method: 'seconds-behind', lagSeconds: 0 });
    const o = await connect(e, 'old');
    try {
      expect(
        await one(o, "SELECT COUNT(*) AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'cutover'"),
      ).toEqual({ n: 0 });
    } finally {
      await o.end();
    }
  }, 60_000);
});
