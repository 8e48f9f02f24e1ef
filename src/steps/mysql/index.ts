import type { PrivilegeNeed } from '../../adapters/mysql-flavor.js';
import type { StepKind } from '../../engine/types.js';
import { checksum } from './checksum.js';
import { connections, connectionsDrain } from './connections.js';
import { mysqlPreflight } from './preflight.js';
import { exec, query } from './query.js';
import { readOnlyKind } from './read-only.js';
import { replicaLag } from './replica-lag.js';
import { replicationReverse } from './replication-reverse.js';
import { replicationStop } from './replication-stop.js';

export const mysqlKinds: StepKind[] = [
  replicaLag,
  connections,
  connectionsDrain,
  readOnlyKind,
  replicationStop,
  replicationReverse,
  checksum,
  query,
  exec,
];

// Attached here so the kinds' own files stay about apply/verify/undo.
for (const k of mysqlKinds) {
  const check = mysqlPreflight(k.kind);
  if (check && !k.preflight) (k as { preflight?: StepKind['preflight'] }).preflight = check;
}

/**
 * Databases a step names only for their credentials (mysql.replication.reverse's replication
 * account: the replica logs in with it, from its own network). Preflight never logs in with them.
 */
export function credentialsOnly(kind: string, params: Record<string, unknown>): string[] {
  if (kind !== 'mysql.replication.reverse') return [];
  const acct = params.replicationAccount;
  // Also a database the step uses itself (source/replica): then it is logged into anyway.
  return typeof acct === 'string' && acct !== params.source && acct !== params.replica ? [acct] : [];
}

export interface PrivilegeCheck {
  database: string;
  need: PrivilegeNeed;
  doing: string;
}

/**
 * Privileges a step needs on which database, for `checkDatabaseReachable(db, { needs })` at plan
 * time (exit 2 before anything runs). `params` are the step's parsed params.
 */
export function mysqlPrivilegeNeeds(kind: string, params: Record<string, unknown>): PrivilegeCheck[] {
  const p = params as Record<string, string | boolean | undefined>;
  const n = (database: unknown, need: PrivilegeNeed, doing: string): PrivilegeCheck[] =>
    typeof database === 'string' ? [{ database, need, doing }] : [];
  switch (kind) {
    case 'mysql.connections':
      return n(p.on, 'see-all-sessions', 'listing sessions');
    case 'mysql.connections.drain':
      return [
        ...n(p.on, 'see-all-sessions', 'listing sessions'),
        ...(p.kill ? n(p.on, 'kill-others', 'KILL of other sessions') : []),
      ];
    case 'mysql.read-only':
      return n(p.on, 'set-read-only', 'SET GLOBAL read_only');
    case 'mysql.replication.stop':
      return [
        ...(p.freeze === 'none'
          ? []
          : p.freeze === 'account-lock'
            ? n(p.source, 'lock-accounts', 'locking the application accounts')
            : n(p.source, 'set-read-only', 'freezing the source')),
        ...n(p.replica, 'replication-admin', 'stopping replication'),
        ...(p.makeWritable === false ? [] : n(p.replica, 'set-read-only', 'making the replica writable')),
      ];
    case 'mysql.replication.reverse':
      return n(p.replica, 'replication-admin', 'configuring reverse replication');
    default:
      return [];
  }
}
