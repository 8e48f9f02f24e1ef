// Must show (issue 15): `cutover rehearse` of the production template on the managed sandbox prints
// the window predicted for PRODUCTION — the template's own parameters — with its breakdown: Route 53
// propagation measured on the production zone by an earlier set-ttl run (a journal in --runs-dir),
// the table sizes an earlier plan read from the production RDS instance, the runbook's TTL and
// drain values; and not the sandbox's one-second figures.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Journal } from '../../../src/journal/journal.js';
import { Redactor } from '../../../src/journal/redact.js';
import type { RehearsalResult } from '../../../src/rehearse/rehearse.js';
import { resetSandbox, type SandboxEnv } from '../../../src/sandbox/index.js';
import { cli, MANAGED, removeTemps, show, tempDir } from './harness.js';

let env: SandboxEnv;
beforeAll(() => {
  env = MANAGED.env();
});
afterAll(async () => {
  await resetSandbox(env);
  removeTemps();
});

describe('rehearse prints the production window of runbooks/rds-to-aurora.yaml', () => {
  it('measured Route 53 on the production zone, plan-read table sizes, runbook TTL; the sandbox’s own figures apart', async () => {
    await resetSandbox(env);
    const runsDir = tempDir('prod-window');
    // Days before, in production: lower-ttl alone (its INSYNC wait is kept in its outputs).
    const ttlRun = join(runsDir, '20261120T100000Z-shop-rds-to-aurora-ttl');
    mkdirSync(ttlRun);
    const j = Journal.open(ttlRun, 'a'.repeat(64), new Redactor([]));
    j.append('step-start', {
      stepId: 'lower-ttl',
      kind: 'aws.route53.set-ttl',
      inputs: { zoneId: 'Z0123456789ABCDEFGHIJ', name: 'db.shop.internal', type: 'CNAME', ttl: 5 },
    });
    j.append('step-done', {
      stepId: 'lower-ttl',
      outputs: { previousTtl: 300, ttl: 5, insyncMs: 38_000, safeAfter: '2026-11-20T10:05:38Z' },
      durationMs: 38_400,
    });
    j.close();
    // And a plan against production, which read the checksum tables' sizes on the RDS instance.
    const planRun = join(runsDir, '20261121T100000Z-shop-rds-to-aurora-plan');
    mkdirSync(planRun);
    writeFileSync(
      join(planRun, 'table-sizes.json'),
      JSON.stringify({
        source: 'shop.abcdefghijkl.eu-west-1.rds.amazonaws.com:3306',
        at: '2026-11-21T10:00:00.000Z',
        bytes: { 'shop.orders': 12e9, 'shop.products': 1.5e9, 'shop.shops': 2e8 },
      }),
    );

    const r = await cli(env, ['rehearse', MANAGED.runbook, ...MANAGED.args(env), '--runs-dir', runsDir]);
    expect(r.code, show(r)).toBe(0);
    const out = r.stdout.slice(r.stdout.indexOf('\nRehearsal'));
    console.log(out);
    expect(out).toMatch(
      /Predicted production window \(time in maintenance\): \S+–\S+ {2}\(budget 10m: (fits|TOO SHORT)\)/,
    );
    expect(out).toMatch(
      /flip-dns: Route 53 propagation \(INSYNC\)\s+38s–57s\s+measured — measured on zone Z0123456789ABCDEFGHIJ: 1 change\(s\) in 1 run\(s\)/,
    );
    expect(out).toMatch(/flip-dns: old TTL waited out\s+5\.0s–6\.0s\s+runbook — TTL 5s set by "lower-ttl"/);
    expect(out).toMatch(/checksum: data read \(3 table\(s\), 13\.7 GB\)\s+1m9s–4m34s\s+plan/);
    expect(out).toMatch(/drain: sessions given time to end\s+0ms–30s\s+runbook/);
    // The rehearsal's own step times show the sandbox's waits it took out.
    expect(out).toMatch(/flip-dns\s+\S+\s+of which environment: insync/);
    await resetSandbox(env); // the first rehearsal cut the sandbox over
    const json = await cli(env, [
      'rehearse',
      MANAGED.runbook,
      ...MANAGED.args(env),
      '--runs-dir',
      runsDir,
      '--json',
    ]);
    const line = json.stdout.split('\n').findLast((l) => l.startsWith('{"type":"rehearsal"'));
    expect(line, show(json)).toBeDefined();
    const res = JSON.parse(line!) as RehearsalResult;
    expect(res.status, show(json)).toBe('succeeded');
    expect(res.production!.rehearsals).toBe(2);
    expect(res.productionIsRehearsed).toBe(false);
    // Production's window is far longer than the sandbox's: its waits are production's.
    expect(res.production!.lowMs).toBeGreaterThan(res.predicted!.highMs);
  }, 240_000);
});
