// Must show (issue 16, "A flip that does not wait on DNS"): runbooks/sandbox-proxy.yaml — the
// sandbox cutover with the switch done by HAProxy instead of DNS — run by the BUILT CLI against the
// test sandbox's real HAProxy and MariaDB pair, under a canary write load through the proxy:
// - a clean run ends with the proxy sending new connections to new;
// - `cutover rehearse` loses no acknowledged write, measures the write-unavailability, and fails
//   fewer write attempts with the hold than the same runbook without it (--var hold=false);
// - for EVERY step, a failure once the step is done (after-step hook), and a SIGKILL while it is in
//   flight, each followed by the rollback (the engine's, or `cutover rollback` past the point of no
//   return / after the kill): the sandbox is as before the run (proxy included), a NEW connection
//   through the proxy lands on old, and every acknowledged write is on old — the window after the
//   flip and before reverse replication included: there new holds writes nothing carries back yet,
//   and the rollback runs reverse replication forward itself before undoing anything.
// Writes are counted by our own rows (root, on both servers), not by the tool.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RehearsalResult } from '../../../src/rehearse/rehearse.js';
import { CanaryLoad, createCanaryTable } from '../../../src/rehearse/load.js';
import type { DatabaseConfig } from '../../../src/runbook/schema.js';
import { captureSandboxState, resetSandbox, type SandboxEnv } from '../../../src/sandbox/index.js';
import { REPO } from '../../helpers/cli.js';
import { sandboxEnv } from '../../setup/sandbox-env.js';
import { sandboxDatabases } from '../step-harness.js';
import {
  cli,
  failAfter,
  hangBefore,
  hooksDir,
  idsOf,
  journalOf,
  killGroup,
  expectWritesOn,
  removeTemps,
  runArgs,
  sandboxSteps,
  show,
  startDetached,
  type Target,
  tempDir,
  waitWhileRunning,
} from './harness.js';

const PROXY: Target = {
  name: 'runbooks/sandbox-proxy.yaml on the self-managed sandbox',
  runbook: join(REPO, 'runbooks', 'sandbox-proxy.yaml'),
  env: () => sandboxEnv(),
  args: () => [],
};
const STEPS = sandboxSteps(PROXY);
const IDS = STEPS.map((s) => s.id);
const PNR = 'flip-proxy';
const TABLE = 'proxy_probe';

let env: SandboxEnv;
let seedState: Awaited<ReturnType<typeof captureSandboxState>>;

beforeAll(async () => {
  env = PROXY.env();
  await resetSandbox(env);
  seedState = await captureSandboxState(env);
});
afterAll(async () => {
  await resetSandbox(env);
  removeTemps();
});

/** The app's account through the proxy: what the canary writers and the landing check use. */
function appViaProxy(): DatabaseConfig {
  return {
    name: 'app',
    host: env.SANDBOX_PROXY_HOST,
    port: Number(env.SANDBOX_PROXY_PORT),
    user: env.SANDBOX_APP_DB_USER,
    password: env.SANDBOX_APP_DB_PASSWORD,
    database: env.SANDBOX_DB_NAME,
    connectTimeoutMs: 3000,
  };
}

/** @@server_id behind a brand-new connection through the proxy (tool account: the fence locks app's). */
async function landsOn(): Promise<number> {
  const c = await mysql.createConnection({
    host: env.SANDBOX_PROXY_HOST,
    port: Number(env.SANDBOX_PROXY_PORT),
    user: env.SANDBOX_DB_USER,
    password: env.SANDBOX_DB_PASSWORD,
    connectTimeout: 3000,
  });
  try {
    const [rows] = await c.query('SELECT @@server_id AS id');
    return Number((rows as { id: number }[])[0]!.id);
  } finally {
    await c.end();
  }
}

/** The ${env.X} and { env: X } the runbook reads, all given by the test sandbox (none from .sandbox/env). */
function envNotCovered(): string[] {
  const text = readFileSync(PROXY.runbook, 'utf8');
  const used = new Set([
    ...[...text.matchAll(/\$\{env\.([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1]!),
    ...[...text.matchAll(/\{\s*env:\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}/g)].map((m) => m[1]!),
  ]);
  expect(used.size).toBeGreaterThan(10);
  return [...used].filter((k) => !env[k]).sort();
}

type Outcome = 'rolled back' | 'refused, then resumed';

/**
 * Reset, capture, start a writer through the proxy, `drive` the run (it returns the run dir and
 * whether it needs an explicit `cutover rollback`), roll back; then the state, the proxy's landing
 * and every acknowledged write are checked against the outcome.
 */
async function underLoad(
  label: string,
  drive: (runsDir: string) => Promise<{ runDir: string; rollback: boolean; output?: string }>,
): Promise<Outcome> {
  await resetSandbox(env);
  const before = await captureSandboxState(env);
  await createCanaryTable(sandboxDatabases(env).old!, TABLE);
  const load = new CanaryLoad(appViaProxy(), TABLE, label, 1, env.SANDBOX_PROXY_HOST);
  load.start();
  await new Promise((r) => setTimeout(r, 300));
  let outcome: Outcome = 'rolled back';
  let acked: string[] = [];
  try {
    const runsDir = tempDir('runs');
    const { runDir, rollback, output = '' } = await drive(runsDir);
    const REFUSED = /Rollback refused before undoing anything/;
    // The engine's own rollback may refuse already (a failure of the flip step itself).
    let refused = REFUSED.test(output);
    if (rollback && !refused) {
      const rb = await cli(env, ['rollback', runDir, '--yes', '--plain']);
      refused = rb.code === 3 && REFUSED.test(rb.stdout);
      if (!refused) expect(rb.code, show(rb)).toBe(0);
    }
    if (refused) {
      expect(idsOf(journalOf(runsDir).lines, 'undo-start')).toEqual([]);
      const fwd = await cli(env, ['resume', runDir, '--yes', '--plain', '--hooks-dir', hooksDir()]);
      expect(fwd.code, show(fwd)).toBe(0);
      outcome = 'refused, then resumed';
    }
    const lines = journalOf(runsDir).lines;
    expect(idsOf(lines, 'undo-failed')).toEqual([]);
    expect(lines.at(-1)!.status).toBe(outcome === 'rolled back' ? 'rolled-back' : 'succeeded');
  } finally {
    acked = (await load.stop()).acks.map((a) => `${label}/${a.writer}:${a.seq}`);
  }
  expect(acked.length).toBeGreaterThan(0);
  await expectWritesOn(env, TABLE, outcome === 'rolled back' ? 'old' : 'new', acked);
  if (outcome === 'rolled back') {
    expect(await landsOn()).toBe(1);
    expect(await captureSandboxState(env)).toEqual(before);
  } else {
    expect(await landsOn()).toBe(2);
  }
  return outcome;
}

describe('runbooks/sandbox-proxy.yaml: the cutover through HAProxy', () => {
  it('covers every step, reads only the test sandbox, flips with the proxy (not DNS)', () => {
    expect(IDS.length).toBeGreaterThanOrEqual(12);
    expect(new Set(IDS).size).toBe(IDS.length);
    expect(envNotCovered()).toEqual([]);
    expect(STEPS.map((s) => s.kind)).toContain('proxy.flip');
    expect(STEPS.map((s) => s.kind)).toContain('proxy.hold');
    expect(STEPS.map((s) => s.kind)).not.toContain('aws.route53.flip');
  });

  it('cutover run: succeeds, new connections through the proxy land on new, DNS untouched', async () => {
    await resetSandbox(env);
    expect(await landsOn()).toBe(1);
    const r = await cli(env, runArgs(tempDir('clean'), hooksDir(), PROXY, env));
    expect(r.code, show(r)).toBe(0);
    expect(await landsOn()).toBe(2);
    const after = await captureSandboxState(env);
    expect(after.proxy).toEqual({
      servers: [
        { name: 'old', state: 'maint', weight: 1 },
        { name: 'new', state: 'ready', weight: 1 },
      ],
      held: false,
    });
    expect(after.appDbRoute).toBe('proxy');
    expect(after.records).toEqual(seedState.records);
  }, 120_000);

  it('cutover rehearse: 0 lost writes, write-unavailability measured; holding fails fewer writes', async () => {
    const rehearse = async (hold: boolean) => {
      await resetSandbox(env);
      const args = ['rehearse', PROXY.runbook, '--runs-dir', tempDir('rehearse'), '--json'];
      const r = await cli(env, hold ? args : [...args, '--var', 'hold=false']);
      const line = r.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { type: string })
        .findLast((e) => e.type === 'rehearsal');
      expect(line, show(r)).toBeDefined();
      const res = line as unknown as RehearsalResult;
      expect(res.status, show(r)).toBe('succeeded');
      expect(res.lostWrites).toBe(0);
      expect(res.acknowledgedWrites).toBeGreaterThan(0);
      expect(res.writeUnavailableMs).toBeTypeOf('number');
      return res;
    };
    const held = await rehearse(true);
    const failing = await rehearse(false);
    console.log(
      `proxy rehearsal: with hold ${held.writeUnavailableMs} ms unavailable, ${held.failedWriteAttempts} failed attempts; without ${failing.writeUnavailableMs} ms, ${failing.failedWriteAttempts} failed attempts`,
    );
    expect(held.failedWriteAttempts).toBeLessThan(failing.failedWriteAttempts);
  }, 180_000);

  describe.each(IDS)('fault after %s', (target) => {
    it('rollback: as before, new connections on old, every acknowledged write on the primary', async () => {
      const outcome = await underLoad(`fault-${target}`, async (runsDir) => {
        const r = await cli(env, runArgs(runsDir, failAfter(target), PROXY, env));
        const past = IDS.indexOf(target) > IDS.indexOf(PNR);
        // Before the point of no return the engine rolls back on its own (at the flip itself after
        // running reverse replication first: new already took writes); past it, it halts (exit 3).
        expect(r.code, show(r)).toBe(past ? 3 : 1);
        if (target === PNR) expect(r.stdout).toMatch(/replicating the new primary's writes back first/);
        return { runDir: journalOf(runsDir).runDir, rollback: past, output: r.stdout };
      });
      expect(outcome).toBe('rolled back');
    }, 180_000);
  });

  describe.each(IDS)('killed during %s', (target) => {
    it('cutover rollback: as before, new connections on old, every acknowledged write on the primary', async () => {
      const outcome = await underLoad(`kill-${target}`, async (runsDir) => {
        const marker = join(tempDir('marker'), 'hook.pid');
        const run = startDetached(env, runArgs(runsDir, hangBefore(target, marker), PROXY, env));
        await waitWhileRunning(run, () => existsSync(marker), `the before-step hook of ${target}`);
        const hookPid = Number(readFileSync(marker, 'utf8').trim());
        killGroup(run.pid);
        killGroup(hookPid);
        expect((await run.done).signal).toBe('SIGKILL');
        const { runDir, lines } = journalOf(runsDir);
        expect([lines.at(-1)!.type, lines.at(-1)!.stepId]).toEqual(['step-start', target]);
        return { runDir, rollback: true };
      });
      // Killed in reverse replication's start too: the rollback runs it first, then undoes.
      expect(outcome).toBe('rolled back');
    }, 180_000);
  });
});
