// In-memory AWS state shared by the EC2, Route 53 and RDS emulations and by the DNS server, so a
// record changed through the Route 53 API is what the DNS server answers once the change is INSYNC.
import { randomBytes } from 'node:crypto';
import {
  ACCOUNT_ID,
  ADMIN_CIDR,
  APP_SUBNET_CIDR,
  DB_HOSTS,
  DEFAULT_INSYNC_DELAY_MS,
  NEW_DB_NAME,
  NEW_DB_READER_NAME,
  NEW_SECURITY_GROUP_ID,
  OLD_DB_NAME,
  RDS_CLUSTER_ID,
  RDS_INSTANCE_ID,
  RECORD_NAME,
  RECORD_TTL,
  REGION,
  SECURITY_GROUP_ID,
  SECURITY_GROUP_PORT,
  VPC_ID,
  ZONE_ID,
  ZONE_NAME,
} from './config.js';

export interface SgRule {
  id: string;
  groupId: string;
  isEgress: boolean;
  /** tcp | udp | icmp | icmpv6 | -1 */
  ipProtocol: string;
  fromPort: number;
  toPort: number;
  cidrIpv4?: string;
  cidrIpv6?: string;
  referencedGroupId?: string;
  description?: string;
}

export interface SecurityGroup {
  id: string;
  name: string;
  description: string;
  vpcId: string;
  ownerId: string;
  rules: SgRule[];
}

export interface RecordSet {
  /** Lower-case FQDN with the trailing dot, as Route 53 returns it. */
  name: string;
  type: string;
  ttl?: number;
  values: string[];
  setIdentifier?: string;
  weight?: number;
  aliasTarget?: { hostedZoneId: string; dnsName: string; evaluateTargetHealth: boolean };
}

export interface HostedZone {
  id: string;
  name: string;
  callerReference: string;
  comment: string;
  privateZone: boolean;
  records: RecordSet[];
  /** What the name servers serve until the first change is INSYNC. */
  seedRecords: RecordSet[];
}

export interface ZoneChange {
  id: string;
  zoneId: string;
  submittedAt: Date;
  insyncAt: number;
  comment?: string;
  recordsAfter: RecordSet[];
}

export interface RdsCluster {
  id: string;
  engine: string;
  engineVersion: string;
  status: string;
  endpoint: string;
  readerEndpoint: string;
  port: number;
  masterUsername: string;
  databaseName: string;
  members: { instanceId: string; writer: boolean }[];
  securityGroupIds: string[];
  createdAt: Date;
  resourceId: string;
}

export interface RdsInstance {
  id: string;
  /** Aurora instances only; an RDS (non-Aurora) instance has none. */
  clusterId?: string;
  instanceClass: string;
  engine: string;
  engineVersion: string;
  status: string;
  address: string;
  port: number;
  availabilityZone: string;
  securityGroupIds: string[];
  createdAt: Date;
  resourceId: string;
}

/** `self`: self-managed servers (one group, no RDS instance for old). `rds`: RDS MySQL → Aurora. */
export type Platform = 'self' | 'rds';

export interface AwsState {
  platform: Platform;
  groups: SecurityGroup[];
  zones: HostedZone[];
  changes: Map<string, ZoneChange>;
  clusters: RdsCluster[];
  instances: RdsInstance[];
  insyncDelayMs: number;
}

export interface SeedOptions {
  dbPort: number;
  insyncDelayMs?: number;
  platform?: Platform;
}

// Only the rds profile has these: old's second group, old's RDS instance and an Aurora reader.
export const OLD_EXTRA_SECURITY_GROUP_ID = 'sg-0sandbox0000003';
export const RDS_OLD_INSTANCE_ID = 'sandbox-rds';
export const RDS_READER_INSTANCE_ID = 'sandbox-aurora-2';

export const newRuleId = () => `sgr-${randomBytes(9).toString('hex').slice(0, 17)}`;
export const newChangeId = () => `C${randomBytes(10).toString('hex').toUpperCase().slice(0, 13)}`;
export const requestId = () => {
  const h = randomBytes(16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};

export const fqdn = (name: string) => {
  const n = name.trim().toLowerCase().replace(/\\052/g, '*');
  return n.endsWith('.') ? n : `${n}.`;
};

function rule(groupId: string, n: number, r: Omit<SgRule, 'id' | 'groupId'>): SgRule {
  return { id: `sgr-0sandbox${String(n).padStart(8, '0')}`, groupId, ...r };
}

export function seedState(opts: SeedOptions): AwsState {
  const created = new Date('2024-01-01T00:00:00Z');
  const tcp = (port: number) => ({ ipProtocol: 'tcp', fromPort: port, toPort: port, isEgress: false });
  const allOut = { ipProtocol: '-1', fromPort: -1, toPort: -1, isEgress: true, cidrIpv4: '0.0.0.0/0' };
  const groups: SecurityGroup[] = [
    {
      id: SECURITY_GROUP_ID,
      name: 'sandbox-db-old',
      description: 'old primary database (sandbox)',
      vpcId: VPC_ID,
      ownerId: ACCOUNT_ID,
      rules: [
        rule(SECURITY_GROUP_ID, 1, {
          ...tcp(SECURITY_GROUP_PORT),
          cidrIpv4: APP_SUBNET_CIDR,
          description: 'app servers',
        }),
        rule(SECURITY_GROUP_ID, 2, {
          ...tcp(SECURITY_GROUP_PORT),
          cidrIpv4: ADMIN_CIDR,
          description: 'admin VPN',
        }),
        rule(SECURITY_GROUP_ID, 3, { ...tcp(22), cidrIpv4: ADMIN_CIDR, description: 'ssh from admin VPN' }),
        rule(SECURITY_GROUP_ID, 4, allOut),
      ],
    },
    {
      id: NEW_SECURITY_GROUP_ID,
      name: 'sandbox-aurora',
      description: 'new Aurora cluster (sandbox)',
      vpcId: VPC_ID,
      ownerId: ACCOUNT_ID,
      rules: [
        rule(NEW_SECURITY_GROUP_ID, 5, {
          ...tcp(SECURITY_GROUP_PORT),
          cidrIpv4: APP_SUBNET_CIDR,
          description: 'app servers',
        }),
        rule(NEW_SECURITY_GROUP_ID, 6, {
          ...tcp(SECURITY_GROUP_PORT),
          cidrIpv4: ADMIN_CIDR,
          description: 'admin VPN',
        }),
        rule(NEW_SECURITY_GROUP_ID, 7, allOut),
      ],
    },
  ];
  const records: RecordSet[] = [
    {
      name: ZONE_NAME,
      type: 'NS',
      ttl: 172800,
      values: [
        'ns-1536.awsdns-00.co.uk.',
        'ns-0.awsdns-00.com.',
        'ns-1024.awsdns-00.org.',
        'ns-512.awsdns-00.net.',
      ],
    },
    {
      name: ZONE_NAME,
      type: 'SOA',
      ttl: 900,
      values: ['ns-1536.awsdns-00.co.uk. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400'],
    },
    { name: fqdn(RECORD_NAME), type: 'CNAME', ttl: RECORD_TTL, values: [fqdn(OLD_DB_NAME)] },
    { name: fqdn(NEW_DB_READER_NAME), type: 'A', ttl: 60, values: [DB_HOSTS.new] },
    { name: fqdn(NEW_DB_NAME), type: 'A', ttl: 60, values: [DB_HOSTS.new] },
    { name: fqdn(OLD_DB_NAME), type: 'A', ttl: 60, values: [DB_HOSTS.old] },
  ];
  const zones: HostedZone[] = [
    {
      id: ZONE_ID,
      name: ZONE_NAME,
      callerReference: 'cutover-sandbox-seed',
      comment: 'cutover sandbox private zone',
      privateZone: true,
      records: structuredClone(records),
      seedRecords: structuredClone(records),
    },
  ];
  const engineVersion = '8.0.mysql_aurora.3.05.2';
  const platform = opts.platform ?? 'self';
  const state: AwsState = {
    platform,
    groups,
    zones,
    changes: new Map(),
    clusters: [
      {
        id: RDS_CLUSTER_ID,
        engine: 'aurora-mysql',
        engineVersion,
        status: 'available',
        endpoint: NEW_DB_NAME,
        readerEndpoint: NEW_DB_READER_NAME,
        port: opts.dbPort,
        masterUsername: 'cutover',
        databaseName: 'shop',
        members: [{ instanceId: RDS_INSTANCE_ID, writer: true }],
        securityGroupIds: [NEW_SECURITY_GROUP_ID],
        createdAt: created,
        resourceId: 'cluster-SANDBOX0AURORA0000000000001',
      },
    ],
    instances: [
      {
        id: RDS_INSTANCE_ID,
        clusterId: RDS_CLUSTER_ID,
        instanceClass: 'db.r6g.large',
        engine: 'aurora-mysql',
        engineVersion,
        status: 'available',
        address: NEW_DB_NAME,
        port: opts.dbPort,
        availabilityZone: `${REGION}a`,
        securityGroupIds: [NEW_SECURITY_GROUP_ID],
        createdAt: created,
        resourceId: 'db-SANDBOX0AURORA0INSTANCE000001',
      },
    ],
    insyncDelayMs: opts.insyncDelayMs ?? DEFAULT_INSYNC_DELAY_MS,
  };
  if (platform === 'rds') addRdsShape(state, opts.dbPort, created);
  return state;
}

/**
 * What a real RDS MySQL → Aurora setup adds: old (an RDS instance) carries two groups, and both let
 * the app subnet in, so fencing one is not enough; each side's group lets the other side's group in
 * on the port, for replication (new pulls from old) and reverse replication (old pulls from new).
 */
function addRdsShape(state: AwsState, dbPort: number, created: Date): void {
  const tcp = {
    ipProtocol: 'tcp',
    fromPort: SECURITY_GROUP_PORT,
    toPort: SECURITY_GROUP_PORT,
    isEgress: false,
  };
  const oldGroup = state.groups.find((g) => g.id === SECURITY_GROUP_ID)!;
  const newGroup = state.groups.find((g) => g.id === NEW_SECURITY_GROUP_ID)!;
  oldGroup.rules.push(
    rule(SECURITY_GROUP_ID, 8, {
      ...tcp,
      referencedGroupId: NEW_SECURITY_GROUP_ID,
      description: 'replication from Aurora',
    }),
  );
  newGroup.rules.push(
    rule(NEW_SECURITY_GROUP_ID, 9, {
      ...tcp,
      referencedGroupId: SECURITY_GROUP_ID,
      description: 'reverse replication from RDS',
    }),
  );
  state.groups.push({
    id: OLD_EXTRA_SECURITY_GROUP_ID,
    name: 'sandbox-app-legacy',
    description: 'legacy app servers group, also attached to the RDS instance (sandbox)',
    vpcId: VPC_ID,
    ownerId: ACCOUNT_ID,
    rules: [
      rule(OLD_EXTRA_SECURITY_GROUP_ID, 10, {
        ...tcp,
        cidrIpv4: APP_SUBNET_CIDR,
        description: 'app servers',
      }),
      rule(OLD_EXTRA_SECURITY_GROUP_ID, 11, {
        ipProtocol: '-1',
        fromPort: -1,
        toPort: -1,
        isEgress: true,
        cidrIpv4: '0.0.0.0/0',
      }),
    ],
  });
  const aurora = state.instances[0]!;
  state.instances.push(
    {
      id: RDS_READER_INSTANCE_ID,
      clusterId: RDS_CLUSTER_ID,
      instanceClass: aurora.instanceClass,
      engine: aurora.engine,
      engineVersion: aurora.engineVersion,
      status: 'available',
      address: NEW_DB_READER_NAME,
      port: dbPort,
      availabilityZone: `${REGION}b`,
      securityGroupIds: [NEW_SECURITY_GROUP_ID],
      createdAt: created,
      resourceId: 'db-SANDBOX0AURORA0INSTANCE000002',
    },
    {
      id: RDS_OLD_INSTANCE_ID,
      instanceClass: 'db.m6g.large',
      engine: 'mysql',
      engineVersion: '8.0.36',
      status: 'available',
      address: OLD_DB_NAME,
      port: dbPort,
      availabilityZone: `${REGION}a`,
      securityGroupIds: [SECURITY_GROUP_ID, OLD_EXTRA_SECURITY_GROUP_ID],
      createdAt: created,
      resourceId: 'db-SANDBOX0RDS0MYSQL0INSTANCE0001',
    },
  );
  state.clusters[0]!.members.push({ instanceId: RDS_READER_INSTANCE_ID, writer: false });
}

/** The record sets the zone's name servers answer with now: those of the latest change that is INSYNC. */
export function servedRecords(state: AwsState, zone: HostedZone, now = Date.now()): RecordSet[] {
  // Changes are kept in submission order, and each one carries the whole zone after it.
  let latest: ZoneChange | undefined;
  for (const c of state.changes.values()) if (c.zoneId === zone.id && c.insyncAt <= now) latest = c;
  return latest ? latest.recordsAfter : zone.seedRecords;
}

export function changeStatus(c: ZoneChange, now = Date.now()): 'PENDING' | 'INSYNC' {
  return now >= c.insyncAt ? 'INSYNC' : 'PENDING';
}
