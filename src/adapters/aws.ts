// EC2 (security groups), Route 53 and RDS through the AWS SDK v3, loaded lazily so that kind modules
// and `cutover validate` never pay for it. Reads and writes are separate methods: the recording
// (dry-run) implementation does the reads for real and turns each write into a plan line.
// Throttling is retried here (the SDK's own retries are off, so every retry checks the run's abort
// signal first), and every AWS failure becomes one line naming the resource and what to check.
import type { RecordChange, RecordSet } from '../steps/aws/records.js';
import { changeTarget, formatRecord, fqdn, normalizeZoneId, sameSlot } from '../steps/aws/records.js';
import type { SgRule } from '../steps/aws/rules.js';
import { formatRule, normalizeProtocol } from '../steps/aws/rules.js';
import { StepError } from '../errors.js';
import { sleep } from '../util/sleep.js';
import type { AdapterEnv, AdapterFactory } from './adapters.js';

export interface CallOpts {
  signal?: AbortSignal;
  /** Told about each throttling retry (the step's log). */
  onRetry?: (message: string) => void;
}

export interface SecurityGroupInfo {
  id: string;
  name: string;
  vpcId?: string;
}

export interface Ec2Adapter {
  readonly region: string;
  /** DescribeSecurityGroups: fails AWS_NOT_FOUND naming the group when one does not exist. */
  groups(groupIds: string[], o?: CallOpts): Promise<SecurityGroupInfo[]>;
  /** Every ingress rule of the group (DescribeSecurityGroupRules, all pages). */
  ingressRules(groupId: string, o?: CallOpts): Promise<SgRule[]>;
  /** Creates rules; returns them with their new ids (none in dry run). */
  authorizeIngress(groupId: string, rules: SgRule[], o?: CallOpts): Promise<SgRule[]>;
  /** Revokes rules by id: exact, unlike revoking by properties. */
  revokeIngress(groupId: string, rules: SgRule[], o?: CallOpts): Promise<void>;
  /** Puts descriptions back on existing rules (ModifySecurityGroupRules). */
  setDescriptions(
    groupId: string,
    changes: { rule: SgRule; description: string | undefined }[],
    o?: CallOpts,
  ): Promise<void>;
  destroy(): void;
}

export interface HostedZone {
  id: string;
  name: string;
  /** The delegation set's servers; a private zone has none. */
  nameServers: string[];
  privateZone: boolean;
  /** VPCs associated with a private zone: only their resolvers answer for it. */
  vpcs: { id: string; region: string }[];
}

export type ChangeStatus = 'PENDING' | 'INSYNC';

export interface Route53Adapter {
  hostedZone(zoneId: string, o?: CallOpts): Promise<HostedZone>;
  /** Every record set at `name` (all types and set identifiers). */
  recordSetsAt(zoneId: string, name: string, o?: CallOpts): Promise<RecordSet[]>;
  /** One all-or-nothing change batch. `before` (the record sets it replaces) feeds the plan lines. */
  change(
    zoneId: string,
    changes: RecordChange[],
    o?: CallOpts & { before?: RecordSet[]; comment?: string },
  ): Promise<{ changeId: string; status: ChangeStatus }>;
  changeStatus(changeId: string, o?: CallOpts): Promise<ChangeStatus>;
  /**
   * Dry run only: a TTL lowering of this slot recorded earlier in the plan (the live run finds it in
   * the journal instead): the TTL before, and until when answers cached with it may live.
   */
  plannedLowering(zoneId: string, slot: RecordSet): { fromTtl: number; until: string } | undefined;
  destroy(): void;
}

export interface RdsClusterInfo {
  id: string;
  arn?: string;
  status: string;
  engine: string;
  engineVersion?: string;
  endpoint?: string;
  readerEndpoint?: string;
  port?: number;
  members: { instanceId: string; writer: boolean }[];
  securityGroupIds: string[];
}

export interface RdsInstanceInfo {
  id: string;
  arn?: string;
  status: string;
  engine: string;
  engineVersion?: string;
  endpoint?: string;
  port?: number;
  clusterId?: string;
  /** Set on a read replica: the instance it replicates from. */
  replicaSourceId?: string;
  securityGroupIds: string[];
}

export interface RdsAdapter {
  readonly region: string;
  cluster(id: string, o?: CallOpts): Promise<RdsClusterInfo>;
  instance(id: string, o?: CallOpts): Promise<RdsInstanceInfo>;
  destroy(): void;
}

// ------------------------------------------------------------------ errors

/** An AWS call failed; the message is one line: resource, cause, what to check. */
export class AwsCallError extends StepError {}

export interface CallSite {
  service: 'ec2' | 'route53' | 'rds';
  op: string;
  /** "zone Z0123", "security group sg-0abc" */
  resource: string;
  /** The ARN an IAM policy must name for this call ('*' when the action has no resource scope). */
  arn: string;
  region?: string;
  endpoint?: string;
}

const THROTTLING = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'SlowDown',
  'PriorRequestNotComplete',
  'ProvisionedThroughputExceededException',
  'EC2ThrottledException',
]);
const TRANSIENT = new Set([
  'InternalError',
  'InternalFailure',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'RequestTimeout',
]);
const DENIED = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedOperation',
  'UnauthorizedAccess',
  'AuthFailure',
  'NotAuthorized',
]);
const NOT_FOUND = /NotFound|NoSuch/;
const CREDENTIALS = new Set([
  'CredentialsProviderError',
  'ExpiredToken',
  'ExpiredTokenException',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'SignatureDoesNotMatch',
  'TokenRefreshRequired',
]);

interface AwsErrorLike {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
  Code?: string;
}

export function awsErrorCode(e: unknown): string {
  const x = e as AwsErrorLike;
  return x?.Code ?? x?.name ?? x?.code ?? 'Error';
}

export function isThrottling(e: unknown): boolean {
  const x = e as AwsErrorLike;
  const code = awsErrorCode(e);
  return (
    THROTTLING.has(code) ||
    x?.$metadata?.httpStatusCode === 429 ||
    (x?.$retryable as { throttling?: boolean } | undefined)?.throttling === true
  );
}

/** The connection dropped mid-call (ECONNRESET, "socket hang up"): the SDK itself retries these. */
export function isNetworkReset(e: unknown): boolean {
  const x = e as AwsErrorLike;
  return /^(ECONNRESET|EPIPE|ECONNABORTED)$/.test(x?.code ?? '') || /socket hang up/i.test(x?.message ?? '');
}

function isTransient(e: unknown): boolean {
  const x = e as AwsErrorLike;
  const status = x?.$metadata?.httpStatusCode;
  return (
    TRANSIENT.has(awsErrorCode(e)) ||
    status === 500 ||
    status === 502 ||
    status === 503 ||
    status === 504 ||
    isNetworkReset(e)
  );
}

function oneLine(s: string | undefined): string {
  return (s ?? '').replace(/\s+/g, ' ').trim().slice(0, 300);
}

/** The one-line message for a failed AWS call. */
export function describeAwsError(e: unknown, site: CallSite, attempts = 1): AwsCallError {
  const code = awsErrorCode(e);
  const msg = oneLine((e as AwsErrorLike)?.message);
  const what = `${site.service} ${site.op} on ${site.resource}`;
  const action = `${site.service}:${site.op}`;
  const net = (e as { code?: string })?.code;
  let out: AwsCallError;
  if (DENIED.has(code) || (code === 'Error' && (e as AwsErrorLike)?.$metadata?.httpStatusCode === 403))
    out = new AwsCallError(
      'AWS_ACCESS_DENIED',
      `${what} denied (${code}): the credentials need ${action} on ${site.arn}`,
      { service: site.service, op: site.op, awsCode: code },
    );
  else if (isThrottling(e))
    out = new AwsCallError(
      'AWS_THROTTLED',
      `${what} still throttled (${code}) after ${attempts} attempt${attempts === 1 ? '' : 's'}: other callers share this account's API rate; retry the step later`,
      { awsCode: code },
    );
  else if (code === 'InvalidChangeBatch')
    out = new AwsCallError(
      'AWS_INVALID_CHANGE_BATCH',
      `${what} rejected the change batch (InvalidChangeBatch): ${msg || 'see the record sets in the plan'}; check the record's current value and type (cutover plan shows both)`,
      { awsCode: code },
    );
  else if (NOT_FOUND.test(code))
    out = new AwsCallError(
      'AWS_NOT_FOUND',
      `${what} failed: not found (${code}): check the id${site.service === 'route53' ? '' : ` and the region (${site.region ?? 'unset'})`}, and that the credentials belong to the right account${msg ? ` — ${msg}` : ''}`,
      { awsCode: code },
    );
  else if (CREDENTIALS.has(code) || /credential/i.test(msg))
    out = new AwsCallError(
      'AWS_CREDENTIALS',
      `${what}: no usable AWS credentials (${code}: ${msg}): set --profile or AWS_PROFILE (run \`aws sso login\` for SSO profiles), or export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY`,
      { awsCode: code },
    );
  else if (/Region is missing/i.test(msg))
    out = new AwsCallError(
      'AWS_NO_REGION',
      `${what}: no AWS region: set --region, AWS_REGION or the profile's region`,
    );
  else if (net && /^(ECONNREFUSED|ENOTFOUND|ECONNRESET|ETIMEDOUT|EAI_AGAIN|EHOSTUNREACH)$/.test(net))
    out = new AwsCallError(
      'AWS_UNREACHABLE',
      `${what}: cannot reach ${site.endpoint ?? 'the AWS endpoint'} (${net}): check --aws-endpoint / CUTOVER_AWS_ENDPOINT and the network`,
      { awsCode: net },
    );
  else
    out = new AwsCallError('AWS_ERROR', `${what} failed (${code})${msg && msg !== code ? `: ${msg}` : ''}`, {
      awsCode: code,
    });
  return out;
}

export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 5_000 };

/** Runs one AWS call: retries throttling and transient faults with jittered backoff, maps failures. */
export async function callAws<T>(
  site: CallSite,
  o: CallOpts | undefined,
  fn: (abortSignal?: AbortSignal) => Promise<T>,
  policy = DEFAULT_RETRY,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    if (o?.signal?.aborted) throw o.signal.reason;
    try {
      return await fn(o?.signal);
    } catch (e) {
      if (o?.signal?.aborted) throw o.signal.reason;
      const retryable = isThrottling(e) || isTransient(e);
      if (!retryable || attempt >= policy.maxAttempts) throw describeAwsError(e, site, attempt);
      // Full jitter: callers throttled together do not retry together.
      const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      const delay = Math.round(cap / 2 + Math.random() * (cap / 2));
      o?.onRetry?.(
        `${site.service} ${site.op} on ${site.resource}: ${awsErrorCode(e)}, retry ${attempt}/${policy.maxAttempts - 1} in ${delay}ms`,
      );
      await sleep(delay, o?.signal);
    }
  }
}

/**
 * Starts loading the SDK clients in the background. Importing @aws-sdk/client-ec2 takes over a
 * second on a cold start: a run should pay that before its first step, not inside the maintenance
 * window where the first AWS step (the fence) usually sits.
 */
export function preloadAwsSdks(): Promise<void> {
  return Promise.all([
    import('@aws-sdk/client-ec2'),
    import('@aws-sdk/client-route-53'),
    import('@aws-sdk/client-rds'),
  ]).then(
    () => undefined,
    () => undefined,
  );
}

// ------------------------------------------------------------------ client configuration

type Service = 'ec2' | 'route53' | 'rds';

function retryPolicy(env: AdapterEnv): RetryPolicy {
  const n = Number(env.env.CUTOVER_AWS_MAX_ATTEMPTS);
  return Number.isInteger(n) && n >= 1 ? { ...DEFAULT_RETRY, maxAttempts: n } : DEFAULT_RETRY;
}

/** The client settings: credentials from the standard chain, region, endpoint; SDK retries off. */
export function clientConfig(
  env: AdapterEnv,
  service: Service,
  regionOverride?: string,
): Record<string, unknown> {
  const endpoint = env.aws.endpoint;
  const configured = regionOverride ?? env.aws.region ?? env.env.AWS_REGION ?? env.env.AWS_DEFAULT_REGION;
  // Route 53 is a global service signed for us-east-1; a local endpoint keeps whatever region is set.
  const region =
    service === 'route53' && !endpoint ? 'us-east-1' : (configured ?? (endpoint ? 'us-east-1' : undefined));
  const cfg: Record<string, unknown> = {
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 },
  };
  if (region) cfg.region = region;
  if (endpoint) cfg.endpoint = endpoint;
  const profile = env.aws.profile;
  if (profile) cfg.profile = profile;
  else {
    // Keys from the runbook's env files are not in process.env, where the SDK's env provider looks.
    const key = env.env.AWS_ACCESS_KEY_ID;
    const secret = env.env.AWS_SECRET_ACCESS_KEY;
    if (key && secret && !env.env.AWS_PROFILE)
      cfg.credentials = {
        accessKeyId: key,
        secretAccessKey: secret,
        ...(env.env.AWS_SESSION_TOKEN ? { sessionToken: env.env.AWS_SESSION_TOKEN } : {}),
      };
    else if (env.env.AWS_PROFILE) cfg.profile = env.env.AWS_PROFILE;
  }
  return cfg;
}

async function regionOf(client: { config: { region: unknown } }): Promise<string> {
  try {
    const r = client.config.region;
    return typeof r === 'function' ? await (r as () => Promise<string>)() : String(r);
  } catch {
    return 'unset';
  }
}

function bump(rec: Record<string, number>, op: string) {
  rec[op] = (rec[op] ?? 0) + 1;
}

// ------------------------------------------------------------------ EC2

function toRule(r: import('@aws-sdk/client-ec2').SecurityGroupRule): SgRule {
  const out: SgRule = {
    protocol: normalizeProtocol(r.IpProtocol),
    fromPort: r.FromPort ?? -1,
    toPort: r.ToPort ?? -1,
  };
  if (r.SecurityGroupRuleId) out.id = r.SecurityGroupRuleId;
  if (r.CidrIpv4) out.cidrIpv4 = r.CidrIpv4;
  if (r.CidrIpv6) out.cidrIpv6 = r.CidrIpv6;
  if (r.ReferencedGroupInfo?.GroupId) out.referencedGroupId = r.ReferencedGroupInfo.GroupId;
  if (r.ReferencedGroupInfo?.UserId && r.ReferencedGroupInfo.UserId !== r.GroupOwnerId)
    out.referencedUserId = r.ReferencedGroupInfo.UserId;
  if (r.PrefixListId) out.prefixListId = r.PrefixListId;
  if (r.Description) out.description = r.Description;
  return out;
}

function toPermission(r: SgRule): import('@aws-sdk/client-ec2').IpPermission {
  const p: import('@aws-sdk/client-ec2').IpPermission = { IpProtocol: r.protocol };
  if (r.protocol !== '-1') {
    p.FromPort = r.fromPort;
    p.ToPort = r.toPort;
  }
  const d = r.description ? { Description: r.description } : {};
  if (r.cidrIpv4) p.IpRanges = [{ CidrIp: r.cidrIpv4, ...d }];
  else if (r.cidrIpv6) p.Ipv6Ranges = [{ CidrIpv6: r.cidrIpv6, ...d }];
  else if (r.referencedGroupId)
    p.UserIdGroupPairs = [
      { GroupId: r.referencedGroupId, ...(r.referencedUserId ? { UserId: r.referencedUserId } : {}), ...d },
    ];
  else if (r.prefixListId) p.PrefixListIds = [{ PrefixListId: r.prefixListId, ...d }];
  return p;
}

function sgArn(region: string, groupId: string): string {
  return `arn:aws:ec2:${region}:*:security-group/${groupId}`;
}

/**
 * What the plan's recorded writes would leave, so a later step's reads see it (a restore planned
 * after a restrict plans against the fenced group, not today's): per group, rules added (with
 * made-up ids), ids revoked, descriptions changed.
 */
interface DryGroups {
  added: Map<string, SgRule[]>;
  revoked: Set<string>;
  described: Map<string, string | undefined>;
  next: number;
}

function dryView(o: DryGroups, groupId: string, real: SgRule[]): SgRule[] {
  const kept = real
    .filter((r) => !r.id || !o.revoked.has(r.id))
    .map((r) => {
      if (!r.id || !o.described.has(r.id)) return r;
      const d = o.described.get(r.id);
      const { description: _d, ...rest } = r;
      return d ? { ...rest, description: d } : rest;
    });
  return [...kept, ...(o.added.get(groupId) ?? []).filter((r) => !o.revoked.has(r.id!))];
}

async function makeEc2(env: AdapterEnv, regionArg: string | undefined, dry: boolean): Promise<Ec2Adapter> {
  const sdk = await import('@aws-sdk/client-ec2');
  const client = new sdk.EC2Client(clientConfig(env, 'ec2', regionArg));
  const region = await regionOf(client);
  const policy = retryPolicy(env);
  const site = (op: string, groupId: string, arn = sgArn(region, groupId)): CallSite => ({
    service: 'ec2',
    op,
    resource: `security group ${groupId}`,
    arn,
    region,
    ...(env.aws.endpoint ? { endpoint: env.aws.endpoint } : {}),
  });
  const write = (op: string) => env.countWrite(`ec2:${op}`);
  const overlay: DryGroups = { added: new Map(), revoked: new Set(), described: new Map(), next: 1 };
  const record = (op: string, action: string, target: string) => {
    env.record({ action, target });
    bump(env.stats.recorded, `ec2:${op}`);
  };

  return {
    region,
    destroy: () => client.destroy(),
    async groups(groupIds, o) {
      if (!groupIds.length) return [];
      env.countRead('ec2:DescribeSecurityGroups');
      const res = await callAws(
        site('DescribeSecurityGroups', groupIds.join(', '), '*'),
        o,
        (abortSignal) =>
          client.send(new sdk.DescribeSecurityGroupsCommand({ GroupIds: groupIds }), { abortSignal }),
        policy,
      );
      return (res.SecurityGroups ?? []).map((g) => ({
        id: g.GroupId ?? '',
        name: g.GroupName ?? '',
        ...(g.VpcId ? { vpcId: g.VpcId } : {}),
      }));
    },
    async ingressRules(groupId, o) {
      const rules: SgRule[] = [];
      let token: string | undefined;
      do {
        env.countRead('ec2:DescribeSecurityGroupRules');
        const res = await callAws(
          site('DescribeSecurityGroupRules', groupId, '*'),
          o,
          (abortSignal) =>
            client.send(
              new sdk.DescribeSecurityGroupRulesCommand({
                Filters: [{ Name: 'group-id', Values: [groupId] }],
                NextToken: token,
                MaxResults: 1000,
              }),
              { abortSignal },
            ),
          policy,
        );
        for (const r of res.SecurityGroupRules ?? [])
          if (!r.IsEgress && (!r.GroupId || r.GroupId === groupId)) rules.push(toRule(r));
        token = res.NextToken || undefined;
      } while (token);
      return dry ? dryView(overlay, groupId, rules) : rules;
    },
    async authorizeIngress(groupId, rules, o) {
      if (!rules.length) return [];
      if (dry) {
        for (const r of rules) record('AuthorizeSecurityGroupIngress', 'authorize', formatRule(groupId, r));
        const made = rules.map((r) => ({ ...r, id: `sgr-plan${String(overlay.next++).padStart(9, '0')}` }));
        overlay.added.set(groupId, [...(overlay.added.get(groupId) ?? []), ...made]);
        return made;
      }
      write('AuthorizeSecurityGroupIngress');
      const res = await callAws(
        site('AuthorizeSecurityGroupIngress', groupId),
        o,
        (abortSignal) =>
          client.send(
            new sdk.AuthorizeSecurityGroupIngressCommand({
              GroupId: groupId,
              IpPermissions: rules.map(toPermission),
            }),
            { abortSignal },
          ),
        policy,
      );
      return (res.SecurityGroupRules ?? []).map(toRule);
    },
    async revokeIngress(groupId, rules, o) {
      if (!rules.length) return;
      if (dry) {
        for (const r of rules) {
          record('RevokeSecurityGroupIngress', 'revoke', formatRule(groupId, r));
          if (r.id) overlay.revoked.add(r.id);
        }
        return;
      }
      const ids = rules.map((r) => r.id).filter((x): x is string => !!x);
      if (ids.length !== rules.length)
        throw new StepError(
          'AWS_RULE_WITHOUT_ID',
          `security group ${groupId}: cannot revoke a rule without its id (revoking by properties is not exact)`,
        );
      write('RevokeSecurityGroupIngress');
      await callAws(
        site('RevokeSecurityGroupIngress', groupId),
        o,
        (abortSignal) =>
          client.send(
            new sdk.RevokeSecurityGroupIngressCommand({ GroupId: groupId, SecurityGroupRuleIds: ids }),
            { abortSignal },
          ),
        policy,
      );
    },
    async setDescriptions(groupId, changes, o) {
      if (!changes.length) return;
      if (dry) {
        for (const c of changes)
          env.record({
            action: 'describe',
            target: formatRule(groupId, { ...c.rule, description: undefined }),
            before: c.rule.description ?? '',
            after: c.description ?? '',
          });
        for (const c of changes) {
          const added = overlay.added.get(groupId)?.find((r) => r.id === c.rule.id);
          if (added) added.description = c.description;
          else if (c.rule.id) overlay.described.set(c.rule.id, c.description);
        }
        bump(env.stats.recorded, 'ec2:ModifySecurityGroupRules');
        return;
      }
      write('ModifySecurityGroupRules');
      await callAws(
        site('ModifySecurityGroupRules', groupId),
        o,
        (abortSignal) =>
          client.send(
            new sdk.ModifySecurityGroupRulesCommand({
              GroupId: groupId,
              SecurityGroupRules: changes.map((c) => ({
                SecurityGroupRuleId: c.rule.id!,
                SecurityGroupRule: {
                  IpProtocol: c.rule.protocol,
                  FromPort: c.rule.fromPort,
                  ToPort: c.rule.toPort,
                  ...(c.rule.cidrIpv4 ? { CidrIpv4: c.rule.cidrIpv4 } : {}),
                  ...(c.rule.cidrIpv6 ? { CidrIpv6: c.rule.cidrIpv6 } : {}),
                  ...(c.rule.referencedGroupId ? { ReferencedGroupId: c.rule.referencedGroupId } : {}),
                  ...(c.rule.prefixListId ? { PrefixListId: c.rule.prefixListId } : {}),
                  Description: c.description ?? '',
                },
              })),
            }),
            { abortSignal },
          ),
        policy,
      );
    },
  };
}

export const ec2Adapter: AdapterFactory<Ec2Adapter, string | undefined> = {
  name: 'aws.ec2',
  live: (env, region) => makeEc2(env, region, false),
  dry: (env, region) => makeEc2(env, region, true),
  close: async (a) => a.destroy(),
};

// ------------------------------------------------------------------ Route 53

export function zoneArn(zoneId: string): string {
  return `arn:aws:route53:::hostedzone/${normalizeZoneId(zoneId)}`;
}

function plain<T>(v: T): T {
  // SDK objects can carry undefined fields; journaled snapshots are plain JSON.
  return JSON.parse(JSON.stringify(v)) as T;
}

async function makeRoute53(env: AdapterEnv, dry: boolean): Promise<Route53Adapter> {
  const sdk = await import('@aws-sdk/client-route-53');
  const client = new sdk.Route53Client(clientConfig(env, 'route53'));
  const policy = retryPolicy(env);
  const site = (op: string, zoneId: string): CallSite => ({
    service: 'route53',
    op,
    resource: `zone ${normalizeZoneId(zoneId)}`,
    arn: zoneArn(zoneId),
    ...(env.aws.endpoint ? { endpoint: env.aws.endpoint } : {}),
  });
  let dryChanges = 0;
  // What the plan's recorded change batches would leave, by zone and slot (null: deleted).
  const planned = new Map<string, Map<string, RecordSet | null>>();
  const slotKey = (r: RecordSet) => `${fqdn(r.Name)}|${r.Type}|${r.SetIdentifier ?? ''}`;
  const lowered = new Map<string, { fromTtl: number; until: string }>();

  return {
    destroy: () => client.destroy(),
    async hostedZone(zoneId, o) {
      env.countRead('route53:GetHostedZone');
      const res = await callAws(
        site('GetHostedZone', zoneId),
        o,
        (abortSignal) =>
          client.send(new sdk.GetHostedZoneCommand({ Id: normalizeZoneId(zoneId) }), { abortSignal }),
        policy,
      );
      return {
        id: normalizeZoneId(res.HostedZone?.Id ?? zoneId),
        name: res.HostedZone?.Name ?? '',
        nameServers: res.DelegationSet?.NameServers ?? [],
        privateZone: res.HostedZone?.Config?.PrivateZone === true,
        vpcs: (res.VPCs ?? []).map((v) => ({ id: v.VPCId ?? '?', region: v.VPCRegion ?? '?' })),
      };
    },
    async recordSetsAt(zoneId, name, o) {
      const want = fqdn(name);
      const out: RecordSet[] = [];
      let start: { name: string; type?: string; id?: string } | undefined = { name: want };
      // Listing starts at the name and runs in DNS order: stop at the first record past it.
      while (start) {
        env.countRead('route53:ListResourceRecordSets');
        const from: { name: string; type?: string; id?: string } = start;
        const res = await callAws(
          site('ListResourceRecordSets', zoneId),
          o,
          (abortSignal) =>
            client.send(
              new sdk.ListResourceRecordSetsCommand({
                HostedZoneId: normalizeZoneId(zoneId),
                StartRecordName: from.name,
                ...(from.type ? { StartRecordType: from.type as any } : {}),
                ...(from.id ? { StartRecordIdentifier: from.id } : {}),
                MaxItems: 100,
              }),
              { abortSignal },
            ),
          policy,
        );
        let past = false;
        for (const r of res.ResourceRecordSets ?? []) {
          if (fqdn(r.Name ?? '') !== want) {
            past = true;
            break;
          }
          out.push(plain(r) as RecordSet);
        }
        start =
          !past && res.IsTruncated && res.NextRecordName && fqdn(res.NextRecordName) === want
            ? {
                name: res.NextRecordName,
                ...(res.NextRecordType ? { type: res.NextRecordType } : {}),
                ...(res.NextRecordIdentifier ? { id: res.NextRecordIdentifier } : {}),
              }
            : undefined;
      }
      const over = planned.get(normalizeZoneId(zoneId));
      if (!dry || !over) return out;
      const view = out.filter((r) => !over.has(slotKey(r)));
      for (const r of over.values()) if (r && fqdn(r.Name) === want) view.push(r);
      return view;
    },
    async change(zoneId, changes, o) {
      if (!changes.length) throw new StepError('AWS_EMPTY_CHANGE', `zone ${zoneId}: empty change batch`);
      const zone = normalizeZoneId(zoneId);
      if (dry) {
        for (const c of changes) {
          const r = c.ResourceRecordSet;
          const before = o?.before?.find((b) => sameSlot(b, r));
          const target = changeTarget(zone, r);
          if (c.Action === 'DELETE')
            env.record({ action: 'delete', target, before: formatRecord(r), after: '(none)' });
          else
            env.record({
              action: c.Action.toLowerCase(),
              target,
              before: formatRecord(before),
              after: formatRecord(r),
            });
        }
        const over = planned.get(zone) ?? new Map<string, RecordSet | null>();
        for (const c of changes) {
          const r = c.ResourceRecordSet;
          const was = o?.before?.find((b) => sameSlot(b, r))?.TTL;
          if (c.Action !== 'DELETE' && was !== undefined && r.TTL !== undefined && r.TTL < was)
            lowered.set(`${zone}|${slotKey(r)}`, {
              fromTtl: was,
              until: new Date(Date.now() + was * 1000).toISOString(),
            });
          over.set(slotKey(r), c.Action === 'DELETE' ? null : plain(r));
        }
        planned.set(zone, over);
        bump(env.stats.recorded, 'route53:ChangeResourceRecordSets');
        return { changeId: `dry-run-${++dryChanges}`, status: 'INSYNC' };
      }
      env.countWrite('route53:ChangeResourceRecordSets');
      const res = await callAws(
        site('ChangeResourceRecordSets', zoneId),
        o,
        (abortSignal) =>
          client.send(
            new sdk.ChangeResourceRecordSetsCommand({
              HostedZoneId: zone,
              ChangeBatch: { ...(o?.comment ? { Comment: o.comment } : {}), Changes: changes as any },
            }),
            { abortSignal },
          ),
        policy,
      );
      return {
        changeId: (res.ChangeInfo?.Id ?? '').replace(/^\/?change\//, ''),
        status: (res.ChangeInfo?.Status ?? 'PENDING') as ChangeStatus,
      };
    },
    plannedLowering(zoneId, slot) {
      return lowered.get(`${normalizeZoneId(zoneId)}|${slotKey(slot)}`);
    },
    async changeStatus(changeId, o) {
      if (changeId.startsWith('dry-run-')) return 'INSYNC';
      env.countRead('route53:GetChange');
      const res = await callAws(
        {
          service: 'route53',
          op: 'GetChange',
          resource: `change ${changeId}`,
          arn: `arn:aws:route53:::change/${changeId}`,
          ...(env.aws.endpoint ? { endpoint: env.aws.endpoint } : {}),
        },
        o,
        (abortSignal) => client.send(new sdk.GetChangeCommand({ Id: changeId }), { abortSignal }),
        policy,
      );
      return (res.ChangeInfo?.Status ?? 'PENDING') as ChangeStatus;
    },
  };
}

export const route53Adapter: AdapterFactory<Route53Adapter, undefined> = {
  name: 'aws.route53',
  live: (env) => makeRoute53(env, false),
  dry: (env) => makeRoute53(env, true),
  close: async (a) => a.destroy(),
};

// ------------------------------------------------------------------ RDS (reads only)

async function makeRds(env: AdapterEnv, regionArg: string | undefined): Promise<RdsAdapter> {
  const sdk = await import('@aws-sdk/client-rds');
  const client = new sdk.RDSClient(clientConfig(env, 'rds', regionArg));
  const region = await regionOf(client);
  const policy = retryPolicy(env);
  const site = (op: string, what: string, arn: string): CallSite => ({
    service: 'rds',
    op,
    resource: what,
    arn,
    region,
    ...(env.aws.endpoint ? { endpoint: env.aws.endpoint } : {}),
  });
  return {
    region,
    destroy: () => client.destroy(),
    async cluster(id, o) {
      env.countRead('rds:DescribeDBClusters');
      const res = await callAws(
        site('DescribeDBClusters', `cluster ${id}`, `arn:aws:rds:${region}:*:cluster:${id}`),
        o,
        (abortSignal) =>
          client.send(new sdk.DescribeDBClustersCommand({ DBClusterIdentifier: id }), { abortSignal }),
        policy,
      );
      const c = res.DBClusters?.[0];
      if (!c)
        throw new AwsCallError(
          'AWS_NOT_FOUND',
          `rds DescribeDBClusters: cluster ${id} not found in ${region}: check the id and the region`,
        );
      return {
        id: c.DBClusterIdentifier ?? id,
        ...(c.DBClusterArn ? { arn: c.DBClusterArn } : {}),
        status: c.Status ?? 'unknown',
        engine: c.Engine ?? 'unknown',
        ...(c.EngineVersion ? { engineVersion: c.EngineVersion } : {}),
        ...(c.Endpoint ? { endpoint: c.Endpoint } : {}),
        ...(c.ReaderEndpoint ? { readerEndpoint: c.ReaderEndpoint } : {}),
        ...(c.Port !== undefined ? { port: c.Port } : {}),
        members: (c.DBClusterMembers ?? []).map((m) => ({
          instanceId: m.DBInstanceIdentifier ?? '?',
          writer: !!m.IsClusterWriter,
        })),
        securityGroupIds: (c.VpcSecurityGroups ?? []).flatMap((g) => g.VpcSecurityGroupId ?? []),
      };
    },
    async instance(id, o) {
      env.countRead('rds:DescribeDBInstances');
      const res = await callAws(
        site('DescribeDBInstances', `instance ${id}`, `arn:aws:rds:${region}:*:db:${id}`),
        o,
        (abortSignal) =>
          client.send(new sdk.DescribeDBInstancesCommand({ DBInstanceIdentifier: id }), { abortSignal }),
        policy,
      );
      const i = res.DBInstances?.[0];
      if (!i)
        throw new AwsCallError(
          'AWS_NOT_FOUND',
          `rds DescribeDBInstances: instance ${id} not found in ${region}: check the id and the region`,
        );
      return {
        id: i.DBInstanceIdentifier ?? id,
        ...(i.DBInstanceArn ? { arn: i.DBInstanceArn } : {}),
        status: i.DBInstanceStatus ?? 'unknown',
        engine: i.Engine ?? 'unknown',
        ...(i.EngineVersion ? { engineVersion: i.EngineVersion } : {}),
        ...(i.Endpoint?.Address ? { endpoint: i.Endpoint.Address } : {}),
        ...(i.Endpoint?.Port !== undefined ? { port: i.Endpoint.Port } : {}),
        ...(i.DBClusterIdentifier ? { clusterId: i.DBClusterIdentifier } : {}),
        ...(i.ReadReplicaSourceDBInstanceIdentifier
          ? { replicaSourceId: i.ReadReplicaSourceDBInstanceIdentifier }
          : {}),
        securityGroupIds: (i.VpcSecurityGroups ?? []).flatMap((g) => g.VpcSecurityGroupId ?? []),
      };
    },
  };
}

// Reads only: the live and the recording implementation are the same.
export const rdsAdapter: AdapterFactory<RdsAdapter, string | undefined> = {
  name: 'aws.rds',
  live: (env, region) => makeRds(env, region),
  dry: (env, region) => makeRds(env, region),
  close: async (a) => a.destroy(),
};
