// What cannot be made safe is refused before the window, from the servers alone (C2, C5, M2).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resetSandbox, type SandboxEnv } from '../../../src/sandbox/index.js';
import { runCli } from '../../helpers/cli.js';
import { reversePreflight } from '../../../src/steps/mysql/replication-reverse.js';
import { stopPreflight } from '../../../src/steps/mysql/replication-stop.js';
import { createHarness, kind } from './harness.js';
import { TARGETS } from './platform.js';

const managed = TARGETS.find((t) => t.name === 'managed')!;

describe.skipIf(!managed.env)('replication stop/reverse preflight on the managed sandbox', () => {
  const e = managed.env!;
  const check = async (kindName: string, params: Record<string, unknown>) => {
    // The kinds' own checks (plan also runs the mysql helper's privilege checks around them).
    const k = kind(kindName);
    const own = (kindName === 'mysql.replication.stop' ? stopPreflight : reversePreflight) as (
      c: unknown,
      p: unknown,
    ) => Promise<void>;
    const h = createHarness({ mode: 'dry', env: e });
    try {
      await own(h.ctx(), k.params.parse(params));
      return 'ok';
    } catch (x) {
      return (x as Error).message;
    } finally {
      await h.close();
    }
  };

  it('C2/M5: freeze: read-only is refused on RDS, account-lock with existing accounts passes', async () => {
    expect(await check('mysql.replication.stop', { source: 'old', replica: 'new' })).toMatch(
      /SQL cannot set read_only there — use freeze: account-lock/,
    );
    expect(
      await check('mysql.replication.stop', {
        source: 'old',
        replica: 'new',
        freeze: 'account-lock',
        accounts: ['nobody'],
      }),
    ).toMatch(/no account named nobody/);
    expect(
      await check('mysql.replication.stop', {
        source: 'old',
        replica: 'new',
        freeze: 'account-lock',
        accounts: ['app'],
      }),
    ).toBe('ok');
  });

  it('C6: reverse replication whose undo could not fence the new side is refused; with accounts it passes', async () => {
    const base = {
      source: 'new',
      replica: 'old',
      replicationAccount: 'repl',
      startFile: 'mysql-bin.000001',
      startPos: 4,
    };
    expect(await check('mysql.replication.reverse', base)).toMatch(
      /the rollback could not fence it — give accounts:/,
    );
    expect(await check('mysql.replication.reverse', { ...base, accounts: ['app'] })).toBe('ok');
  });

  it('C5/C6 plan: a reverse step fed by stop-replication’s outputs is still checked before the first step', async () => {
    await resetSandbox(e as unknown as SandboxEnv);
    const dir = mkdtempSync(join(tmpdir(), 'cutover-reverse-plan-'));
    const runbook = (accounts: string) => `version: 1
name: reverse-plan
databases:
  old: { host: "\${env.SANDBOX_OLD_DB_HOST}", port: "\${env.SANDBOX_DB_PORT}", user: "\${env.SANDBOX_DB_USER}", password: { env: SANDBOX_DB_PASSWORD } }
  new: { host: "\${env.SANDBOX_NEW_DB_HOST}", port: "\${env.SANDBOX_DB_PORT}", user: "\${env.SANDBOX_DB_USER}", password: { env: SANDBOX_DB_PASSWORD } }
  repl: { host: 10.255.255.1, port: 3306, user: repl_reverse, password: { env: SANDBOX_DB_PASSWORD } }
steps:
  - { id: stop-replication, kind: mysql.replication.stop, with: { source: old, replica: new, freeze: account-lock, accounts: [app] } }
  - id: reverse-replication
    kind: mysql.replication.reverse
    with:
      source: new
      replica: old
      replicationAccount: repl
      startFile: \${steps.stop-replication.outputs.switchFile}
      startPos: \${steps.stop-replication.outputs.switchPos}
      frozenFile: \${steps.stop-replication.outputs.sourceFile}
      frozenPos: \${steps.stop-replication.outputs.sourcePos}${accounts}
`;
    try {
      const plan = async (accounts: string) => {
        writeFileSync(join(dir, 'r.yaml'), runbook(accounts));
        const r = await runCli(['plan', join(dir, 'r.yaml'), '--plain', '--runs-dir', join(dir, 'runs')], {
          env: e,
        });
        return { code: r.code, lines: r.stdout.split('\n').filter((l) => l.includes('reverse-replication')) };
      };
      const refused = await plan('');
      expect(refused.code).toBe(1);
      expect(refused.lines.join('\n')).toMatch(/the rollback could not fence it — give accounts:/);
      const ok = await plan('\n      accounts: [app]');
      expect(ok.code).toBe(0);
      expect(ok.lines.join('\n')).not.toMatch(/could not fence|error: preflight/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
