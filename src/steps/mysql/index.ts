import type { PrivilegeNeed } from '../../adapters/mysql-flavor.js';
import type { StepKind } from '../../engine/types.js';
import { checksum } from './checksum.js';
import { connections, connectionsDrain } from './connections.js';
import { withMysqlPreflight } from './preflight.js';
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

// Attached here so the kinds' own files stay about apply/verify/undo. A kind's own preflight
// (the data-safety checks of replication stop/reverse) runs as well; see withMysqlPreflight.
for (const k of mysqlKinds) {
  (k as { preflight?: StepKind['preflight'] }).preflight = withMysqlPreflight(k.kind, k.preflight?.bind(k));
}

/**
 * Databases a step names only for their credentials (mysql.replication.reverse's replication
 * account: the replica logs in with it, from its own network). The database preflight does not
 * require them to log in from here; mysql.replication.reverse's own preflight checks the account.
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
 * Privileges a step needs on which database, checked by the kinds' preflight before the first step
 * (one line naming the step, exit 1). `params` are the step's parsed params. On RDS/Aurora,
 * kill-others means EXECUTE on mysql.rds_kill and replication-admin the rds_* procedures (named
 * one by one by the preflight).
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
        ...(p.kill ? n(p.on, 'kill-others', 'ending the sessions left after the grace period') : []),
      ];
    case 'mysql.read-only':
      return n(p.on, 'set-read-only', 'SET GLOBAL read_only');
    case 'mysql.replication.stop':
      return [
        ...(p.freeze === 'none'
          ? []
          : p.freeze === 'account-lock'
            ? [
                ...n(p.source, 'lock-accounts', 'locking the application accounts'),
                ...n(p.source, 'kill-others', 'ending the locked accounts’ sessions'),
              ]
            : n(p.source, 'set-read-only', 'freezing the source')),
        // The writes-after-freeze guard and the undo read both binlogs (SHOW BINLOG EVENTS).
        ...n(p.source, 'binlog-monitor', 'reading the binlog after the freeze'),
        ...n(p.replica, 'binlog-monitor', 'reading the binlog since the switch'),
        ...n(p.replica, 'replication-admin', 'stopping replication'),
        ...(p.makeWritable === false ? [] : n(p.replica, 'set-read-only', 'making the replica writable')),
      ];
    case 'mysql.replication.reverse':
      return [
        ...n(p.replica, 'replication-admin', 'configuring reverse replication'),
        ...n(p.source, 'binlog-monitor', 'reading the binlog since the switch'),
      ];
    default:
      return [];
  }
}
