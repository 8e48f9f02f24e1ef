// Write-blocked window of mysql.replication.stop as a client sees it: an app-account writer inserts
// as fast as it can on old, switches to new at the first 1290, and retries there until accepted;
// the window is first refusal → first acceptance on new. Next to it, the floor: the same sequence as
// bare SQL on pre-opened connections (freeze → read GTID → MASTER_GTID_WAIT → stop slave →
// unfreeze new), measured the same way. The sandbox is reset before each run and after the last.
import type { Connection } from 'mysql2/promise';
import {
  connect,
  createHarness,
  type Env,
  one,
  replicaCaughtUp,
  reset,
  runStep,
} from '../test/integration/mysql/harness.js';
import {
  createWritesTable,
  lostWrites,
  Writer,
  type WriterResult,
} from '../test/integration/mysql/writer.js';

const RUNS = 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const round = (x: number) => Math.round(x * 100) / 100;

async function underLoad(
  env: Env,
  cutover: () => Promise<void>,
): Promise<{ res: WriterResult; lost: number }> {
  await reset(env);
  await createWritesTable(env);
  await replicaCaughtUp(env);
  const w = new Writer(env, 1);
  await w.start();
  await w.started;
  await new Promise((r) => setTimeout(r, 200));
  let res: WriterResult;
  try {
    await cutover();
    await new Promise((r) => setTimeout(r, 200));
  } finally {
    res = await w.stop();
  }
  if (res.windowMs === undefined)
    throw new Error(`no write window observed (${res.failures} failures, ${res.otherErrors.join('; ')})`);
  return { res, lost: (await lostWrites(env, res.acks)).length };
}

async function bareSql(o: Connection, n: Connection): Promise<void> {
  await o.query('SET GLOBAL read_only = 1');
  const { p } = await one<{ p: string }>(o, 'SELECT @@GLOBAL.gtid_binlog_pos AS p');
  const { r } = await one<{ r: number }>(n, 'SELECT MASTER_GTID_WAIT(?, 30) AS r', [p]);
  if (Number(r) !== 0) throw new Error('replica did not catch up');
  await n.query('STOP SLAVE');
  await n.query('SET GLOBAL read_only = 0');
}

export async function benchStopReplication(
  env: Record<string, string>,
): Promise<{ medianMs: number; runs: number[]; lost: number; floorMs: number }> {
  const runs: number[] = [];
  const floors: number[] = [];
  let lost = 0;
  try {
    for (let i = 0; i < RUNS; i++) {
      const h = createHarness({ mode: 'live', env });
      const { res, lost: l } = await underLoad(env, async () => {
        await runStep(h, 'mysql.replication.stop', { source: 'old', replica: 'new' });
      }).finally(() => h.close());
      runs.push(round(res.windowMs!));
      lost += l;

      const [o, n] = await Promise.all([connect(env, 'old'), connect(env, 'new')]);
      const floor = await underLoad(env, () => bareSql(o, n)).finally(async () => {
        await o.end();
        await n.end();
      });
      floors.push(floor.res.windowMs!);
      lost += floor.lost;
    }
  } finally {
    await reset(env);
  }
  return { medianMs: round(median(runs)), runs, lost, floorMs: round(median(floors)) };
}

// `npx tsx bench/mysql-stop.ts` with the sandbox env in the environment (or MYSQL_TEST_ENV_FILE).
if (import.meta.url === `file://${process.argv[1]}`) {
  const { readFileSync } = await import('node:fs');
  const { parseEnvFile } = await import('../src/runbook/env-file.js');
  const file = process.env.MYSQL_TEST_ENV_FILE ?? '.sandbox/env';
  const env = process.env.SANDBOX_OLD_DB_HOST
    ? (process.env as Record<string, string>)
    : parseEnvFile(readFileSync(file, 'utf8'));
  const r = await benchStopReplication({
    ...env,
    ...(process.env.MYSQL_TEST_RESET_MODULE
      ? { MYSQL_TEST_RESET_MODULE: process.env.MYSQL_TEST_RESET_MODULE }
      : {}),
  });
  console.log(JSON.stringify(r));
}
