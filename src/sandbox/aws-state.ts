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
  clusterId: string;
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

export interface AwsState {
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
}

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
  return {
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
