// Must show (issue 7), no lost writes: 5 rehearsals in a row of runbooks/sandbox.yaml under the
// canary load (`cutover rehearse --json`, the built CLI), the sandbox reset between them. Each one
// succeeds with 0 acknowledged writes lost (the tool's row-by-row check on the new primary), some
// writes acknowledged, and a measured write-unavailability. Independently of the tool's own count,
// the test reads the run's canary rows on both servers: at least every acknowledged write is on the
// new primary, and the old one (replicating back from it) holds the very same rows.
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RehearsalResult } from '../../../src/rehearse/rehearse.js';
import { resetSandbox, type SandboxEnv } from '../../../src/sandbox/index.js';
import { rootConnection } from '../../../src/sandbox/mariadb.js';
import { sandboxEnv } from '../../setup/sandbox-env.js';
import { cli, RUNBOOK, removeTemps, show, tempDir } from './harness.js';

const REHEARSALS = 5;
const TABLE = 'cutover_canary';

let env: SandboxEnv;
let runsDir: string;
const results: (RehearsalResult & { wallMs: number; note: string })[] = [];
let succeeded = 0;

beforeAll(() => {
  env = sandboxEnv();
  runsDir = tempDir('rehearsals');
});
afterAll(async () => {
  if (results.length) console.log(table(results));
  await resetSandbox(env);
  removeTemps();
});

/** The canary rows of the latest load on a server (by root socket: independent of the tool's accounts). */
async function canaryRows(socket: string, runId?: string): Promise<{ runId: string; rows: string[] }> {
  const c = await rootConnection(socket);
  try {
    const db = env.SANDBOX_DB_NAME;
    const id =
      runId ??
      String(
        (
          await c.query<RowDataPacket[]>(
            `SELECT run_id FROM \`${db}\`.\`${TABLE}\` GROUP BY run_id ORDER BY MAX(at) DESC LIMIT 1`,
          )
        )[0][0]?.run_id ?? '',
      );
    const [rows] = await c.query<RowDataPacket[]>(
      `SELECT writer, seq FROM \`${db}\`.\`${TABLE}\` WHERE run_id = ? ORDER BY writer, seq`,
      [id],
    );
    return { runId: id, rows: rows.map((r) => `${r.writer}:${r.seq}`) };
  } finally {
    await c.end().catch(() => undefined);
  }
}

function table(rs: typeof results): string {
  const head = [
    '#',
    'status',
    'acked',
    'lost',
    'failed tries',
    'write-unavail.',
    'maintenance',
    'predicted',
    'wall',
    'failed step',
  ];
  const rows = rs.map((r, i) => [
    String(i + 1),
    r.status,
    String(r.acknowledgedWrites),
    String(r.lostWrites),
    String(r.failedWriteAttempts),
    r.writeUnavailableMs !== undefined ? `${r.writeUnavailableMs} ms` : '-',
    r.maintenanceMs !== undefined ? `${r.maintenanceMs} ms` : '-',
    r.predictedWindowMs !== undefined ? `${r.predictedWindowMs} ms` : '-',
    `${(r.wallMs / 1000).toFixed(1)} s`,
    r.note,
  ]);
  const sorted = rs
    .map((r) => r.writeUnavailableMs)
    .filter((x): x is number => x !== undefined)
    .sort((a, b) => a - b);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i]!)).join('  ');
  return [
    `\nrehearsals of runbooks/sandbox.yaml (cutover rehearse --json, ${REHEARSALS} in a row, 2 writers)`,
    line(head),
    line(w.map((n) => '-'.repeat(n))),
    ...rows.map(line),
    `write-unavailability: median ${sorted[Math.floor(sorted.length / 2)] ?? '-'} ms, max ${sorted.at(-1) ?? '-'} ms; lost writes total ${rs.reduce((a, r) => a + r.lostWrites, 0)}`,
  ].join('\n');
}

describe(`no lost writes: ${REHEARSALS} rehearsals of runbooks/sandbox.yaml under load`, () => {
  for (let i = 1; i <= REHEARSALS; i++) {
    it(`rehearsal ${i}/${REHEARSALS}: succeeds, writes acknowledged, 0 lost, write-unavailability measured`, async () => {
      await resetSandbox(env);
      const t0 = performance.now();
      const r = await cli(env, ['rehearse', RUNBOOK, '--runs-dir', runsDir, '--json']);
      const wallMs = performance.now() - t0;
      const events = r.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map(
          (l) => JSON.parse(l) as { type: string; state?: string; stepId?: string; error?: { code: string } },
        );
      const line = events.findLast((e) => e.type === 'rehearsal');
      expect(line, show(r)).toBeDefined();
      const res = line as unknown as RehearsalResult;
      const failed = events.find((e) => e.type === 'step' && e.state === 'failed');
      const note = failed ? `${failed.stepId}: ${failed.error?.code}` : '';
      results.push({ ...res, wallMs, note });
      if (res.status === 'succeeded') succeeded++;

      // Lost writes are counted whatever became of the run (after a rollback, on the old primary).
      expect(res.lostWrites).toBe(0);
      expect(res.acknowledgedWrites).toBeGreaterThan(0);
      expect(res.status, `${note}\n${show(r)}`).toBe('succeeded');
      expect(r.code).toBe(0);
      expect(res.exitCode).toBe(0);
      expect(res.writeUnavailableMs).toBeTypeOf('number');
      expect(res.writeUnavailableMs!).toBeGreaterThan(0);
      expect(res.maintenanceMs).toBeTypeOf('number');
      // Each successful rehearsal's window joins the history the prediction is made from.
      expect(res.rehearsalsSeen).toBe(succeeded);
      expect(res.predictedWindowMs!).toBeGreaterThanOrEqual(res.maintenanceMs!);

      // Our own count, on the servers themselves.
      const onNew = await canaryRows(env.SANDBOX_NEW_DB_SOCKET);
      expect(onNew.runId).toMatch(/^rehearsal-/);
      expect(onNew.rows.length).toBeGreaterThanOrEqual(res.acknowledgedWrites);
      // Old replicates from new after the cutover: it converges on the same rows (nothing diverged).
      let onOld: string[] = [];
      for (let k = 0; k < 50; k++) {
        onOld = (await canaryRows(env.SANDBOX_OLD_DB_SOCKET, onNew.runId)).rows;
        if (onOld.length === onNew.rows.length) break;
        await new Promise((done) => setTimeout(done, 200));
      }
      expect(onOld).toEqual(onNew.rows);
    }, 120_000);
  }
});
