// The database-level fence that works where read_only cannot be set by SQL (RDS, Aurora < 3.06):
// ALTER USER ... ACCOUNT LOCK refuses new logins of the application's accounts (the RDS master user
// has CREATE USER); sessions already open are ended with the kill helper. ACCOUNT LOCK is binlogged,
// so it replicates: callers restore the other side where that matters.
import { z } from 'zod';
import type { AccountName, MysqlAdapter } from '../../adapters/mysql.js';
import type { StepContext } from '../../engine/types.js';
import { StepError } from '../../errors.js';
import { groupSessions, describeGroups, isClientSession, killSession } from './common.js';

export const Accounts = z.lazy(() =>
  z
    .array(z.string().min(1))
    .default([])
    .describe('application accounts to lock: "user" (every host it has) or "user@host"'),
);

export interface AccountState extends AccountName {
  locked: boolean;
}

const q = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
export const accountText = (a: AccountName) => `${a.user}@${a.host}`;
export const accountSql = (a: AccountName) => `${q(a.user)}@${q(a.host)}`;

/** "app" → every app@host the server has; "app@10.%" → that one. Needs SELECT on mysql.user. */
export async function resolveAccounts(a: MysqlAdapter, names: readonly string[]): Promise<AccountState[]> {
  const out: AccountName[] = [];
  for (const n of names) {
    const at = n.lastIndexOf('@');
    if (at > 0) {
      out.push({ user: n.slice(0, at), host: n.slice(at + 1) });
      continue;
    }
    let rows: { Host: string }[];
    try {
      rows = await a.query<{ Host: string }>('SELECT Host FROM mysql.user WHERE User = ?', [n], {
        op: 'accounts',
      });
    } catch (e) {
      throw new StepError(
        'ACCOUNTS_UNREADABLE',
        `${a.label}: cannot list the hosts of account ${n} (${(e as Error).message.replace(/^.*?: /, '')}) — name them as user@host, or grant SELECT on mysql.user`,
      );
    }
    if (!rows.length)
      throw new StepError('ACCOUNT_NOT_FOUND', `${a.label}: no account named ${n} — check accounts:`);
    for (const r of rows) out.push({ user: n, host: String(r.Host) });
  }
  const locks = await a.accountLocks(out);
  const missing = out.filter(
    (x) => !locks.some((l) => l.account.user === x.user && l.account.host === x.host),
  );
  if (missing.length)
    throw new StepError(
      'ACCOUNT_NOT_FOUND',
      `${a.label}: no account ${missing.map(accountText).join(', ')} — check accounts:`,
    );
  return locks.map((l) => ({ ...l.account, locked: l.locked }));
}

/** One ALTER USER for the accounts not yet in the wanted state; returns those it changed. */
export async function setLocked(
  a: MysqlAdapter,
  accounts: readonly AccountName[],
  lock: boolean,
  purpose: string,
  /** The caller knows they all need the change (inside the freeze: no extra round trips). */
  known = false,
): Promise<AccountName[]> {
  const change = known
    ? [...accounts]
    : (await a.accountLocks(accounts)).filter((x) => x.locked !== lock).map((x) => x.account);
  if (!change.length) return [];
  await a.exec(
    `ALTER USER ${change.map(accountSql).join(', ')} ACCOUNT ${lock ? 'LOCK' : 'UNLOCK'}`,
    [],
    {
      action: 'ALTER USER',
      target: `${change.map(accountText).join(', ')} on ${a.name}`,
      before: lock ? 'unlocked' : 'locked',
      after: lock ? 'ACCOUNT LOCK' : 'ACCOUNT UNLOCK',
      detail: purpose,
    },
    { op: lock ? 'account-lock' : 'account-unlock' },
  );
  return change;
}

/** Ends the sessions of these users (a lock only refuses new logins) and waits until they are gone. */
export async function endSessionsOf(
  ctx: StepContext | undefined,
  a: MysqlAdapter,
  users: readonly string[],
  timeoutMs: number,
  reason: string,
): Promise<string> {
  const mine = (await a.sessions()).filter((s) => isClientSession(s) && users.includes(s.user));
  if (!mine.length) return '';
  for (const s of mine) await killSession(a, { id: s.id, who: `${s.user}@${s.host}`, reason });
  if (a.mode === 'dry') return describeGroups(groupSessions(mine));
  const ids = new Set(mine.map((s) => s.id));
  const deadline = Date.now() + timeoutMs;
  // KILL returns before the thread ends; a commit it had in flight can still reach the binlog.
  while ((await a.sessions()).some((s) => ids.has(s.id))) {
    if (Date.now() > deadline)
      throw new StepError(
        'SESSIONS_REMAIN',
        `${a.label}: sessions of ${users.join(', ')} still there ${timeoutMs} ms after KILL`,
      );
    await (ctx ? ctx.sleep(20) : new Promise((r) => setTimeout(r, 20)));
  }
  return describeGroups(groupSessions(mine));
}
