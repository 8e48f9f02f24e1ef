import type { PrivilegeNeed } from '../../adapters/mysql-flavor.js';
import type { StepKind } from '../../engine/types.js';
import { checksum } from './checksum.js';
import { connections, connectionsDrain } from './connections.js';
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
        ...(p.freeze === 'none' ? [] : n(p.source, 'set-read-only', 'freezing the source')),
        ...n(p.replica, 'replication-admin', 'stopping replication'),
        ...(p.makeWritable === false ? [] : n(p.replica, 'set-read-only', 'making the replica writable')),
      ];
    case 'mysql.replication.reverse':
      return n(p.replica, 'replication-admin', 'configuring reverse replication');
    default:
      return [];
  }
}
