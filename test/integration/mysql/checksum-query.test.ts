import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ValidateContext } from '../../../src/engine/types.js';
import { testEnv } from './env.js';
import {
  connect,
  createHarness,
  fails,
  kind,
  one,
  replicaCaughtUp,
  reset,
  runStep,
  undoStep,
} from './harness.js';

const env = testEnv();

describe.skipIf(!env)('mysql.checksum, mysql.query and mysql.exec on the sandbox', () => {
  const e = env!;
  const shop = e?.SANDBOX_DB_NAME ?? 'shop';
  beforeEach(async () => {
    await reset(e);
    await replicaCaughtUp(e);
  }, 60_000);
  afterEach(async () => {
    await reset(e);
  }, 60_000);

  it('identical sides pass with both methods', async () => {
    for (const method of ['checksum-table', 'crc32'] as const) {
      const h = createHarness({ mode: 'live', env: e });
      const run = await runStep(h, 'mysql.checksum', {
        source: 'old',
        replica: 'new',
        schemas: [shop],
        method,
        chunkRows: 100,
      }).finally(() => h.close());
      expect(run.outputs).toMatchObject({ differing: [], method });
      expect(run.outputs.tables).toBeGreaterThanOrEqual(1);
    }
  }, 60_000);

  it('names the tables that differ (changed row, missing table)', async () => {
    const n = await connect(e, 'new');
    const o = await connect(e, 'old');
    // Changes outside replication: the tool's account may write despite read_only and skip the binlog.
    await n.query('SET SESSION sql_log_bin = 0');
    await n.query('UPDATE orders SET total_cents = total_cents + 1 WHERE id = 1');
    await o.query('SET SESSION sql_log_bin = 0');
    await o.query('CREATE TABLE only_on_old (id INT PRIMARY KEY)');
    await n.end();
    await o.end();
    const h = createHarness({ mode: 'live', env: e });
    const a = await fails(
      runStep(h, 'mysql.checksum', {
        source: 'old',
        replica: 'new',
        schemas: [shop],
        method: 'checksum-table',
      }),
    );
    expect(a.code).toBe('CHECKSUM_MISMATCH');
    expect(a.message).toMatch(
      new RegExp(
        `^2 of \\d+ table\\(s\\) differ between old and new: ${shop}\\.only_on_old \\(missing on new\\), ${shop}\\.orders \\(old is not read-only`,
      ),
    );
    const b = await fails(
      runStep(h, 'mysql.checksum', {
        source: 'old',
        replica: 'new',
        tables: [`${shop}.orders`],
        method: 'crc32',
        chunkRows: 100,
      }),
    );
    expect(b.message).toMatch(
      new RegExp(
        `^1 of 1 table\\(s\\) differ between old and new: ${shop}\\.orders \\(id 1-\\d+: \\d+ vs \\d+ rows\\)`,
      ),
    );
    await h.close();
  }, 60_000);

  it('mysql.query checks its result and outputs the first row', async () => {
    const h = createHarness({ mode: 'live', env: e });
    try {
      const run = await runStep(h, 'mysql.query', {
        on: 'new',
        sql: `SELECT COUNT(*) AS n, MAX(id) AS last FROM ${shop}.orders WHERE id >= ?`,
        params: [1],
        expect: { rows: 1, atLeast: 1 },
      });
      expect(run.outputs).toMatchObject({ rows: 1, row: { n: expect.anything(), last: expect.anything() } });
      const err = await fails(
        runStep(h, 'mysql.query', {
          on: 'new',
          sql: `SELECT COUNT(*) FROM ${shop}.orders`,
          expect: { equals: 0 },
        }),
      );
      expect(err.code).toBe('QUERY_CHECK_FAILED');
      expect(err.message).toMatch(
        /^database "new" \(.+\): first value is "?\d+"?, expected 0 \(SELECT COUNT/,
      );
    } finally {
      await h.close();
    }
    // A write is refused at validation, and by the server if it slips through (READ ONLY transaction).
    const issues: string[] = [];
    const k = kind('mysql.query');
    const v = { issue: (_p: unknown, m: string) => issues.push(m) } as unknown as ValidateContext;
    k.validate!(k.params.parse({ on: 'old', sql: 'DELETE FROM orders' }), v);
    expect(issues).toEqual(['mysql.query only reads; "DELETE" writes — use mysql.exec with an undo query']);
  }, 60_000);

  it('mysql.exec writes, records in dry run, and its undo query reverses it', async () => {
    const params = {
      on: 'old',
      sql: `INSERT INTO ${shop}.orders (id, customer_id, total_cents, created_at) VALUES (900, 1, 5, '2024-08-01')`,
      undo: `DELETE FROM ${shop}.orders WHERE id = 900`,
      expectAffectedRows: 1,
    };
    const dry = createHarness({ mode: 'dry', env: e });
    await runStep(dry, 'mysql.exec', params).finally(() => dry.close());
    expect(dry.planLines()).toEqual([`would run on old: ${params.sql}`]);
    const o = await connect(e, 'old');
    try {
      const count = async () =>
        (await one<{ c: number }>(o, 'SELECT COUNT(*) AS c FROM orders WHERE id = 900')).c;
      expect(await count()).toBe(0);
      const h = createHarness({ mode: 'live', env: e });
      const run = await runStep(h, 'mysql.exec', params).finally(() => h.close());
      expect(run.outputs).toEqual({ affectedRows: 1 });
      expect(await count()).toBe(1);
      await undoStep(e, 'mysql.exec', run);
      expect(await count()).toBe(0);
    } finally {
      await o.end();
    }
  }, 60_000);
});
