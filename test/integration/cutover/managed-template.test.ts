// Must show (issue "RDS and Aurora for real"): the production template, runbooks/rds-to-aurora.yaml,
// unmodified, rehearsed under load on the managed-platform sandbox (`sandbox up --platform rds`: the
// tool account holds only what an RDS master user holds, replication runs through mysql.rds_*
// procedures, rdsadmin heartbeats and rotates binlogs, the zone is private) with the vars file
// `sandbox up` wrote — GTID on and GTID off. Exit 0, 0 acknowledged writes lost (the tool's count
// and our own row check on both servers), write-unavailability and time in maintenance reported.
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RehearsalResult } from '../../../src/rehearse/rehearse.js';
import { captureSandboxState, resetSandbox, type SandboxEnv } from '../../../src/sandbox/index.js';
import { rootConnection } from '../../../src/sandbox/mariadb.js';
import { cli, MANAGED, removeTemps, show, tempDir } from './harness.js';

const TABLE = 'cutover_canary';
let env: SandboxEnv;
const figures: string[] = [];

beforeAll(() => {
  env = MANAGED.env();
});
afterAll(async () => {
  if (figures.length)
    console.log(`\nrunbooks/rds-to-aurora.yaml rehearsed on the managed sandbox\n${figures.join('\n')}`);
  await resetSandbox(env);
  removeTemps();
});

async function canaryRows(socket: string, runId: string): Promise<string[]> {
  const c = await rootConnection(socket);
  try {
    const [rows] = await c.query<RowDataPacket[]>(
      `SELECT writer, seq FROM \`${env.SANDBOX_DB_NAME}\`.\`${TABLE}\` WHERE run_id = ? ORDER BY writer, seq`,
      [runId],
    );
    return rows.map((r) => `${r.writer}:${r.seq}`);
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function latestRun(socket: string): Promise<string> {
  const c = await rootConnection(socket);
  try {
    const [rows] = await c.query<RowDataPacket[]>(
      `SELECT run_id FROM \`${env.SANDBOX_DB_NAME}\`.\`${TABLE}\` GROUP BY run_id ORDER BY MAX(at) DESC LIMIT 1`,
    );
    return String(rows[0]?.run_id ?? '');
  } finally {
    await c.end().catch(() => undefined);
  }
}

describe('the production template rehearsed under load on the managed platform', () => {
  it.each(['on', 'off'] as const)(
    'GTID %s: succeeds, 0 acknowledged writes lost, write-unavailability and maintenance measured',
    async (gtid) => {
      await resetSandbox(env, { gtid });
      const seed = await captureSandboxState(env);
      expect(seed.servers.new.replication[0]?.usingGtid).toBe(gtid === 'on' ? 'Slave_Pos' : 'No');
      const runsDir = tempDir(`template-${gtid}`);
      const r = await cli(env, [
        'rehearse',
        MANAGED.runbook,
        ...MANAGED.args(env),
        '--runs-dir',
        runsDir,
        '--json',
      ]);
      const events = r.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map(
          (l) => JSON.parse(l) as { type: string; state?: string; stepId?: string; error?: { code: string } },
        );
      const res = events.findLast((e) => e.type === 'rehearsal') as unknown as RehearsalResult | undefined;
      expect(res, show(r)).toBeDefined();
      const failed = events.find((e) => e.type === 'step' && e.state === 'failed');
      figures.push(
        `GTID ${gtid}: ${res!.status}, ${res!.acknowledgedWrites} acknowledged, ${res!.lostWrites} lost, write-unavailability ${res!.writeUnavailableMs} ms, maintenance ${res!.maintenanceMs} ms${failed ? `, failed at ${failed.stepId} (${failed.error?.code})` : ''}`,
      );
      expect(res!.lostWrites).toBe(0);
      expect(res!.status, `${failed?.stepId}: ${failed?.error?.code}\n${show(r)}`).toBe('succeeded');
      expect(r.code).toBe(0);
      expect(res!.acknowledgedWrites).toBeGreaterThan(0);
      expect(res!.writeUnavailableMs!).toBeGreaterThan(0);
      expect(res!.maintenanceMs!).toBeGreaterThan(0);

      // Our own count, by root on the servers: every acknowledged write is on Aurora, and RDS
      // (replicating back from it since the flip) converges on the very same rows.
      const runId = await latestRun(env.SANDBOX_NEW_DB_SOCKET);
      expect(runId).toMatch(/^rehearsal-/);
      const onNew = await canaryRows(env.SANDBOX_NEW_DB_SOCKET, runId);
      expect(onNew.length).toBeGreaterThanOrEqual(res!.acknowledgedWrites);
      let onOld: string[] = [];
      for (let k = 0; k < 50; k++) {
        onOld = await canaryRows(env.SANDBOX_OLD_DB_SOCKET, runId);
        if (onOld.length === onNew.length) break;
        await new Promise((done) => setTimeout(done, 200));
      }
      expect(onOld).toEqual(onNew);
      // The platform kept running underneath: the rdsadmin heartbeat is still scheduled on both.
      const end = await captureSandboxState(env);
      expect(end.servers.old.events).toContain('mysql.rds_heartbeat');
      expect(end.servers.new.eventScheduler).toBe(true);
      expect(end.dnsAnswer).toEqual([env.SANDBOX_DB_NEW_NAME]);
    },
    180_000,
  );
});
