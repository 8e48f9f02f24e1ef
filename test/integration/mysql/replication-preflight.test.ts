// What cannot be made safe is refused before the window, from the servers alone (C2, C5, M2).
import { describe, expect, it } from 'vitest';
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
});
