// What a run changed, per resource, read from the journal alone: each step's inputs (step-start),
// the state it recorded before changing anything (snapshot), what it returned (step-done) and what
// its undo did (undo-done / undo-failed). A reviewer reads "rule X removed, restored" here rather
// than the raw snapshots. Pure: records in, changes out; kinds without a reader here are left to the
// report's step details.
import type { JournalRecord } from '../journal/journal.js';
import { reconstruct, type StepRunState } from '../journal/state.js';
import { formatRecord, type RecordSet, recordValues } from '../steps/aws/records.js';
import { formatPorts, planRestrict, ruleSource, type SgRule, sourceFields } from '../steps/aws/rules.js';
import { DEFAULT_MARKER, isJobLine } from '../steps/ops/crontab.js';

/** Where the resource ended up, as far as the journal knows. */
export type ChangeOutcome =
  /** The change was made and is still in place. */
  | 'in place'
  /** The step's undo ran: the resource is back to `before`. */
  | 'restored'
  | 'undo failed'
  /** A rollback left it on purpose (rollback: none, a refused undo): still `after`. */
  | 'left in place'
  /** The step stopped mid-apply (crash, kill): somewhere between before and after. */
  | 'not finished';

export interface ResourceChange {
  stepId: string;
  kind: string;
  /** "security group sg-0abc… tcp/3306", "DNS record db.example.internal CNAME", "server old". */
  resource: string;
  /** One line each: rules, record values with TTL, server variables, crontab lines. */
  before: string[];
  after: string[];
  outcome: ChangeOutcome;
  /** Restored: when the undo finished, and by whom (a rollback may run under another account). */
  restoredAt?: string;
  restoredBy?: string;
  /** What `after` cannot tell: an undo that restores nothing, an unknown end state. */
  note?: string;
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
/** A snapshot not of the shape this reader knows (another version's journal): shown raw instead. */
function need(ok: boolean): asserts ok {
  if (!ok) throw new Error('unknown snapshot shape');
}
const onOff = (v: unknown) => (v === true ? 'ON' : v === false ? 'OFF' : 'unknown');

interface StepFacts {
  inputs: Obj;
  snapshot: unknown;
  outputs: Obj | undefined;
}
type Change = Pick<ResourceChange, 'resource' | 'before' | 'after'> & {
  note?: string;
  /** False when no undo can bring `before` back (ended sessions): never shown as restored. */
  restorable?: false;
};
type Reader = (f: StepFacts) => Change[];

// ----------------------------------------------------------------------------- security groups

const ruleLine = (r: SgRule) =>
  `${formatPorts(r)} from ${ruleSource(r)}${r.description ? ` (${r.description})` : ''}`;

const securityGroupRestrict: Reader = ({ inputs, snapshot }) => {
  const s = obj(snapshot);
  const port = Number(s.port ?? inputs.port);
  const protocol = str(s.protocol) ?? str(inputs.protocol) ?? 'tcp';
  const allow = arr(inputs.allow).map((a) =>
    typeof a === 'string' ? { source: a } : (a as { source: string; description?: string }),
  );
  const groups = s.groups
    ? arr(s.groups).map(obj)
    : [{ groupId: s.groupId ?? inputs.groupId, rules: s.rules ?? [] }];
  need(groups.every((g) => arr(g.rules).every((r) => typeof obj(r).protocol === 'string')));
  return groups.map((g) => {
    const rules = arr(g.rules) as SgRule[];
    const plan = planRestrict(rules, {
      protocol,
      port,
      allow: allow.filter((a) => sourceFields(a.source)),
      ...(str(inputs.description) ? { description: str(inputs.description)! } : {}),
    });
    const onPort = [...plan.keep, ...plan.revoke];
    return {
      resource: `security group ${String(g.groupId)} ${protocol}/${port} ingress`,
      before: onPort.map(ruleLine),
      after: [...plan.keep, ...plan.add].map(ruleLine),
      ...(plan.revoke.length
        ? { note: `removed: ${plan.revoke.map(ruleLine).join('; ')}` }
        : { note: 'no rule to remove' }),
    };
  });
};

const securityGroupRestore: Reader = ({ snapshot, outputs }) => {
  const s = obj(snapshot);
  const port = Number(s.port);
  const protocol = str(s.protocol) ?? 'tcp';
  const groups = s.groups ? arr(s.groups).map(obj) : [{ groupId: s.groupId, rules: s.rules ?? [] }];
  need(groups.every((g) => arr(g.rules).every((r) => typeof obj(r).protocol === 'string')));
  return groups.map((g) => {
    const onPort = (arr(g.rules) as SgRule[]).filter(
      (r) => r.protocol === '-1' || (r.fromPort <= port && port <= r.toPort),
    );
    return {
      resource: `security group ${String(g.groupId)} ${protocol}/${port} ingress`,
      before: onPort.map(ruleLine),
      after: ['the rules recorded by the step that fenced it'],
      ...(outputs ? { note: `added ${outputs.added ?? 0}, revoked ${outputs.revoked ?? 0}` } : {}),
    };
  });
};

// ----------------------------------------------------------------------------- DNS

const recordLine = (r: RecordSet | undefined) => formatRecord(r);

const route53Flip: Reader = ({ inputs, snapshot }) => {
  const s = obj(snapshot);
  need(Array.isArray(s.existing));
  const existing = arr(s.existing) as RecordSet[];
  const type = str(s.type) ?? str(inputs.type) ?? 'CNAME';
  const name = String(s.name ?? inputs.name).replace(/\.$/, '');
  const ttl = inputs.ttl ?? existing[0]?.TTL;
  const value = inputs.value;
  const values = Array.isArray(value) ? value.map(String) : value !== undefined ? [String(value)] : [];
  const after = inputs.alias
    ? `alias ${String(obj(inputs.alias).dnsName ?? obj(inputs.alias).DNSName ?? '?')}`
    : `${values.join(', ')} TTL ${ttl ?? '?'}`;
  return [
    {
      resource: `DNS record ${name} ${type}${s.zoneId ? ` (zone ${String(s.zoneId)})` : ''}`,
      before: existing.length ? existing.map(recordLine) : ['(no record)'],
      after: [after],
    },
  ];
};

const route53SetTtl: Reader = ({ inputs, snapshot }) => {
  const s = obj(snapshot);
  need(typeof obj(s.record).Type === 'string');
  const r = obj(s.record) as unknown as RecordSet;
  const after = { ...r, TTL: Number(inputs.ttl) };
  return [
    {
      resource: `DNS record ${String(r.Name ?? inputs.name).replace(/\.$/, '')} ${r.Type ?? inputs.type ?? ''} TTL${s.zoneId ? ` (zone ${String(s.zoneId)})` : ''}`,
      before: [recordValues(r).length || r.AliasTarget ? recordLine(r) : `TTL ${r.TTL ?? '?'}`],
      after: [recordValues(r).length || r.AliasTarget ? recordLine(after) : `TTL ${after.TTL}`],
    },
  ];
};

// ----------------------------------------------------------------------------- MySQL servers

const position = (p: Obj) =>
  [p.gtid ? `GTID ${String(p.gtid)}` : '', p.file ? `${String(p.file)}:${String(p.pos)}` : '']
    .filter(Boolean)
    .join(', ');

const replicationStop: Reader = ({ inputs, snapshot, outputs }) => {
  const s = obj(snapshot);
  need(typeof s.source === 'object' && typeof s.replica === 'object');
  const src = obj(s.source);
  const rep = obj(s.replica);
  const o = outputs ?? {};
  const source = String(inputs.source);
  const replica = String(inputs.replica);
  const freeze = str(inputs.freeze) ?? 'read-only';
  const sourceAfter = [
    freeze === 'read-only' ? 'read_only ON (frozen)' : `read_only ${onOff(src.readOnly)}`,
    ...(freeze === 'account-lock' ? [`accounts locked: ${arr(inputs.accounts).join(', ')}`] : []),
    ...(o.sourceGtid || o.sourceFile
      ? [`frozen at ${position({ gtid: o.sourceGtid, file: o.sourceFile, pos: o.sourcePos })}`]
      : []),
  ];
  const replicaBefore = [
    `replication from ${source}: IO thread ${rep.ioRunning ? 'running' : 'stopped'}, SQL thread ${rep.sqlRunning ? 'running' : 'stopped'}`,
    ...(rep.slavePos || rep.gtidMode
      ? [`GTID ${String(rep.slavePos ?? rep.ownState ?? '?')} (${String(rep.gtidMode ?? 'gtid')})`]
      : []),
    `read_only ${onOff(rep.readOnly)}`,
  ];
  const replicaAfter = [
    `replication stopped${o.switchGtid || o.switchFile ? ` at ${position({ gtid: o.switchGtid, file: o.switchFile, pos: o.switchPos })}` : ''}`,
    `read_only ${inputs.makeWritable === false ? onOff(rep.readOnly) : 'OFF'}${inputs.makeWritable === false ? '' : ' (writable)'}`,
  ];
  return [
    {
      resource: `server ${source} (source)`,
      before: [
        `read_only ${onOff(src.readOnly)}`,
        ...(position(obj(src.position)) ? [`at ${position(obj(src.position))}`] : []),
      ],
      after: sourceAfter,
    },
    { resource: `server ${replica} (replica)`, before: replicaBefore, after: replicaAfter },
  ];
};

const replicationReverse: Reader = ({ inputs, snapshot, outputs }) => {
  const s = obj(snapshot);
  const prev = s.previous ? obj(s.previous) : undefined;
  const o = outputs ?? {};
  const from = o.sourceHost ? `${String(o.sourceHost)}:${String(o.sourcePort)}` : String(inputs.source);
  return [
    {
      resource: `server ${String(inputs.replica)} (replica of ${String(inputs.source)})`,
      before: [
        prev
          ? `replication from ${String(prev.sourceHost)}:${String(prev.sourcePort)}, ${prev.running ? 'running' : 'stopped'}`
          : 'no replication configured',
      ],
      after: [
        `replication from ${String(inputs.source)} (${from})${o.user ? ` as ${String(o.user)}` : ''}: IO and SQL threads running`,
        ...(o.startedAt ? [`started at GTID ${String(o.startedAt)}`] : []),
      ],
    },
  ];
};

const readOnly: Reader = ({ inputs, snapshot, outputs }) => {
  const s = obj(snapshot);
  const o = outputs ?? {};
  const line = (ro: unknown, sro: unknown) =>
    `read_only ${onOff(ro)}${sro === null || sro === undefined ? '' : `, super_read_only ${onOff(sro)}`}`;
  return [
    {
      resource: `server ${String(inputs.on)}`,
      before: [line(s.readOnly, s.superReadOnly)],
      after: [
        outputs ? line(o.readOnly, o.superReadOnly) : `read_only ${onOff(inputs.readOnly)}`,
        ...(Number(o.killed) > 0 ? [`${String(o.killed)} blocking session(s) ended`] : []),
      ],
    },
  ];
};

const drain: Reader = ({ inputs, outputs }) => {
  const o = outputs ?? {};
  return [
    {
      resource: `application sessions on ${String(inputs.on)}`,
      before: [str(o.connectedAtStart) || 'none'],
      after: [Number(o.killed) > 0 ? `${String(o.killed)} ended: ${String(o.killedSessions)}` : 'none left'],
      note: 'an undo does not bring sessions back: clients reconnect',
      restorable: false,
    },
  ];
};

// ----------------------------------------------------------------------------- ops

/**
 * Crontab lines travel further in a report than in the journal (tickets, chat), and a job's command
 * may carry a credential the run never knew (so the journal's redaction did not catch it): what
 * looks like one is masked. The journal keeps the bytes the undo writes back.
 */
export function maskCredentials(line: string): string {
  // A value: quoted (spaces allowed) or one word; its quotes are kept so the line still reads.
  const hide = (v: string) => (/^['"]/.test(v) ? `${v[0]}***${v[0]}` : '***');
  const VALUE = `('[^']*'|"[^"]*"|[^\\s'"&;]+)`;
  const masked = line
    .replace(/(:\/\/[^\s:/@]+:)[^\s@/]+@/g, '$1***@')
    .replace(/\b(Bearer|Basic)\s+[^\s'"]+/gi, '$1 ***')
    .replace(
      new RegExp(
        `((?:^|[\\s'"?&;-])-{0,2}[\\w.-]*(?:password|passwd|pwd|token|secret|api[_-]?key|access[_-]?key|auth)[\\w.-]*\\s*[=:]\\s*|(?:^|\\s)-{1,2}(?:password|token|secret|api-key)\\s+)(?!(?:Bearer|Basic)\\s)${VALUE}`,
        'gi',
      ),
      (_, key: string, v: string) => `${key}${hide(v)}`,
    );
  // -pSECRET is the mysql clients' password flag; elsewhere -p… is -print, -path, -perm.
  return /\bmysql\w*\b/.test(masked)
    ? masked.replace(new RegExp(`(\\s-p)${VALUE}`, 'g'), (_, key: string, v: string) => `${key}${hide(v)}`)
    : masked;
}

const crons =
  (dir: 'disable' | 'enable'): Reader =>
  ({ snapshot }) => {
    const s = obj(snapshot);
    need(Array.isArray(s.hosts));
    const marker = str(s.marker) ?? DEFAULT_MARKER;
    const out: Change[] = [];
    for (const h of arr(s.hosts).map(obj)) {
      for (const t of arr(h.targets).map(obj)) {
        const target = obj(t.target);
        const where = `${target.type === 'file' ? `crontab ${String(target.path)}` : target.user ? `crontab of ${String(target.user)}` : 'crontab'} on ${String(h.host)}`;
        const text = str(obj(t.before).text);
        if (text === undefined) {
          if (obj(t.before).exists === false) continue;
          out.push({ resource: where, before: ['(not text)'], after: ['(not text)'] });
          continue;
        }
        const lines = text.split('\n');
        const changed =
          dir === 'disable'
            ? lines.filter(isJobLine).map((l) => [l, marker + l] as const)
            : lines.filter((l) => l.startsWith(marker)).map((l) => [l, l.slice(marker.length)] as const);
        if (changed.length)
          out.push({
            resource: where,
            before: changed.map((c) => maskCredentials(c[0])),
            after: changed.map((c) => maskCredentials(c[1])),
          });
      }
      for (const u of arr(h.timers).map(obj))
        out.push({
          resource: `systemd timer ${String(u.unit)} on ${String(h.host)}`,
          before: [String(u.state)],
          after: [dir === 'disable' ? 'stopped' : 'started'],
        });
    }
    return out;
  };

const maintenance =
  (to: 'on' | 'off'): Reader =>
  ({ snapshot, outputs }) => {
    const s = obj(snapshot);
    need(typeof s.wasOn === 'boolean');
    const was = s.wasOn === true ? 'on' : 'off';
    const paths = (list: unknown[]) =>
      list
        .map(obj)
        .map((x) => `${String(x.name)}: HTTP ${x.status === null ? 'no answer' : String(x.status)}`);
    return [
      {
        resource: 'maintenance mode',
        before: [was, ...paths(arr(s.paths))],
        after: [to, ...paths(arr(outputs?.paths))],
      },
    ];
  };

const READERS: Record<string, Reader> = {
  'aws.security-group.restrict': securityGroupRestrict,
  'aws.security-group.restore': securityGroupRestore,
  'aws.route53.flip': route53Flip,
  'aws.route53.set-ttl': route53SetTtl,
  'mysql.replication.stop': replicationStop,
  'mysql.replication.reverse': replicationReverse,
  'mysql.read-only': readOnly,
  'mysql.connections.drain': drain,
  'crons.disable': crons('disable'),
  'crons.enable': crons('enable'),
  'maintenance.enter': maintenance('on'),
  'maintenance.exit': maintenance('off'),
};

function outcomeOf(st: StepRunState): ChangeOutcome {
  if (st.status === 'undone') return 'restored';
  if (st.status === 'undo-failed') return 'undo failed';
  if (st.status === 'undo-skipped') return 'left in place';
  if (st.status === 'in-flight') return 'not finished';
  return 'in place';
}

/**
 * Every resource a step of the run changed, in the order the steps ran. Steps of kinds it cannot
 * read (no reader, or a snapshot of another shape) are left out: the report shows their snapshots raw.
 */
export function resourceChanges(records: readonly JournalRecord[]): ResourceChange[] {
  const state = reconstruct(records);
  const out: ResourceChange[] = [];
  // A plan changes nothing: what it would change is in its plan lines.
  if (state.mode === 'plan') return out;
  for (const id of state.stepOrder) {
    const st = state.steps.get(id)!;
    const read = READERS[st.kind];
    // Only a step that journaled its snapshot may have changed anything.
    if (!read || !st.applyStarted || st.snapshot === undefined || st.snapshot === null) continue;
    const mine = records.filter((r) => r.stepId === id);
    const start = mine.findLast((r) => r.type === 'step-start');
    const undone = mine.findLast((r) => r.type === 'undo-done');
    let found: Change[];
    try {
      found = read({ inputs: obj(start?.inputs), snapshot: st.snapshot, outputs: st.outputs });
    } catch {
      // A journal from another version with a shape this reader does not know: details still show it.
      continue;
    }
    const ran = outcomeOf(st);
    for (const { restorable, ...c } of found) {
      const outcome =
        ran === 'in place' && st.status === 'failed' && !st.applied
          ? 'not finished'
          : ran === 'restored' && restorable === false
            ? 'in place'
            : ran;
      out.push({
        stepId: id,
        kind: st.kind,
        ...c,
        outcome,
        ...(outcome === 'restored' && undone ? { restoredAt: undone.ts, restoredBy: undone.by } : {}),
      });
    }
  }
  return out;
}
