// The account the reverse replica logs into the new primary with. Its password is first used by
// mysql.replication.reverse, after the flip: a typo found there halts the run past the point of no
// return with nothing replicating back. The preflight tries it from here instead. A login from here
// proves little when refused (the account may be limited to the replica's network), so a refusal
// only fails the preflight when the server's own account list shows a row for that user that covers
// this host: then the password is what is wrong.
import { checkDatabaseReachable, type MysqlAdapter, MysqlError } from '../../adapters/mysql.js';
import type { StepContext } from '../../engine/types.js';
import { errorCode, StepError } from '../../errors.js';

export async function checkReplicationAccount(
  ctx: StepContext,
  source: MysqlAdapter,
  account: string,
): Promise<void> {
  const acct = ctx.database(account);
  try {
    // As the replica logs in: no default schema (a schema grant is not what replication needs).
    // Best effort: an address only the replica can reach must not hold the preflight for long.
    const { database: _schema, ...asReplica } = acct;
    const probe = { ...asReplica, connectTimeoutMs: Math.min(acct.connectTimeoutMs, 3000) };
    await checkDatabaseReachable(probe, {
      needs: [{ need: 'replicate-from', doing: 'replicating from it' }],
    });
    return;
  } catch (e) {
    // A missing REPLICATION SLAVE, or a locked account, refuses the replica just the same.
    if (errorCode(e) === 'DB_PRIVILEGE_MISSING' || errorCode(e) === 'DB_ACCOUNT_LOCKED') throw e;
    if (errorCode(e) !== 'DB_ACCESS_DENIED') {
      ctx.warn(`could not try the replication account ${acct.user} from here (${(e as Error).message})`);
      return;
    }
  }
  let rows: { Host: string; covers: number | string }[];
  let me: string;
  try {
    const [who] = await source.query<{ u: string }>('SELECT USER() AS u', [], { op: 'whoami' });
    me = String(who?.u ?? '').replace(/^.*@/, '');
    rows = await source.query<{ Host: string; covers: number }>(
      'SELECT Host, ? LIKE Host AS covers FROM mysql.user WHERE User = ?',
      [me, acct.user],
      { op: 'replication-account' },
    );
  } catch (e) {
    if (!(e instanceof MysqlError)) throw e;
    ctx.warn(
      `${source.label} refused ${acct.user} from here and its account list is not readable: not checked`,
    );
    return;
  }
  if (!rows.length)
    throw new StepError(
      'REPLICATION_ACCOUNT_MISSING',
      `${source.label} has no account ${acct.user} (databases.${account}.user): the reverse replica could not log in — create it with REPLICATION SLAVE before the cutover`,
    );
  const covering = rows.find((r) => Number(r.covers) === 1);
  if (covering)
    throw new StepError(
      'DB_ACCESS_DENIED',
      `${source.label} refused the replication account ${acct.user} with the password of databases.${account} (its account ${acct.user}@'${covering.Host}' covers this host, ${me}): reverse replication would fail after the flip — check the password`,
    );
  const many = rows.length > 1;
  ctx.warn(
    `${source.label} refused ${acct.user} from ${me}; its account${many ? 's' : ''} (${rows.map((r) => `@'${r.Host}'`).join(', ')}) ${many ? 'do' : 'does'} not cover this host: the password is checked when the replica logs in`,
  );
}
