// SQL injection through --var and through a step output changes nothing: values reach
// mysql.exec / mysql.query only as bound ? parameters, and a runbook that templates a value into
// SQL text is refused before anything runs (exit 2).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/cli.js';
import { writeRunbook } from '../../helpers/runbooks.js';
import { workspace } from '../../helpers/workspace.js';
import { testEnv } from './env.js';
import { connect, reset } from './harness.js';

const env = testEnv();
const PAYLOAD = "0 OR 1=1; DROP TABLE orders; -- '";

describe.skipIf(!env)('SQL templating', () => {
  const e = env!;
  const ws = workspace();
  const db = () => ({
    old: {
      host: e.SANDBOX_OLD_DB_HOST,
      port: Number(e.SANDBOX_DB_PORT),
      user: e.SANDBOX_DB_USER,
      password: { env: 'SANDBOX_DB_PASSWORD' },
      database: e.SANDBOX_DB_NAME,
    },
  });
  const cliEnv = () => ({ SANDBOX_DB_PASSWORD: e.SANDBOX_DB_PASSWORD });
  async function table(): Promise<string> {
    const c = await connect(e, 'old');
    try {
      const [rows] = await c.query(
        `SELECT COUNT(*) AS n, SUM(total_cents) AS s FROM \`${e.SANDBOX_DB_NAME}\`.orders`,
      );
      return JSON.stringify(rows);
    } finally {
      await c.end();
    }
  }
  beforeAll(() => reset(e), 60_000);
  afterAll(async () => {
    await reset(e);
    ws.cleanup();
  }, 60_000);

  it('a --var and a step output bound as parameters change nothing', async () => {
    const before = await table();
    const rb = writeRunbook(ws.dir, {
      name: 'sql-bound',
      params: { id: '1' },
      databases: db(),
      steps: [
        { id: 'out', kind: 'shell.run', with: { command: `printf %s "0 OR 1=1; DELETE FROM orders"` } },
        {
          id: 'touch',
          kind: 'mysql.exec',
          with: {
            on: 'old',
            sql: 'UPDATE orders SET total_cents = total_cents + 1 WHERE id = ?',
            params: ['${params.id}'],
            undo: 'UPDATE orders SET total_cents = total_cents - 1 WHERE id = ?',
            undoParams: ['${params.id}'],
          },
        },
        {
          id: 'look',
          kind: 'mysql.query',
          with: {
            on: 'old',
            sql: 'SELECT COUNT(*) FROM orders WHERE id = ?',
            params: ['${steps.out.outputs.stdout}'],
            expect: { equals: 0 },
          },
        },
      ],
    });
    const r = await runCli(['run', rb, '--execute', '--runs-dir', ws.runsDir, '--var', `id=${PAYLOAD}`], {
      cwd: ws.dir,
      env: cliEnv(),
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await table()).toBe(before);
  }, 60_000);

  it.each([
    ['--var', 'DELETE FROM orders WHERE id = ${params.id}'],
    ['a step output', 'DELETE FROM orders WHERE id = ${steps.out.outputs.stdout}'],
  ])(
    'a value templated into SQL text (%s) is refused before anything runs',
    async (_what, sql) => {
      const before = await table();
      const rb = writeRunbook(
        ws.dir,
        {
          name: 'sql-text',
          params: { id: '1' },
          databases: db(),
          steps: [
            { id: 'out', kind: 'shell.run', with: { command: 'printf %s "0 OR 1=1"' } },
            { id: 'bad', kind: 'mysql.exec', with: { on: 'old', sql, undo: 'DO 0' } },
          ],
        },
        'text.yaml',
      );
      const r = await runCli(['run', rb, '--execute', '--runs-dir', ws.runsDir, '--var', `id=${PAYLOAD}`], {
        cwd: ws.dir,
        env: cliEnv(),
      });
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stderr).toMatch(/text\.yaml:\d+:\d+ \$\{.*\} inside SQL text could change the statement/);
      expect(await table()).toBe(before);
    },
    60_000,
  );
});
