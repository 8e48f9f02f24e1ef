// EC2 security-group subset over the EC2 query protocol (form-encoded POST, XML without result
// wrappers, lower-camel element names, `item` list members), with the error codes EC2 returns.
import { ACCOUNT_ID, REGION } from './config.js';
import { type AwsState, newRuleId, type SecurityGroup, type SgRule } from './aws-state.js';
import {
  AwsError,
  bool,
  list,
  type QueryParams,
  type XmlChild,
  type XmlNode,
  xml,
  xmlDocument,
} from './aws-xml.js';

export const EC2_XMLNS = 'http://ec2.amazonaws.com/doc/2016-11-15/';
export const EC2_MUTATING = [
  'AuthorizeSecurityGroupIngress',
  'RevokeSecurityGroupIngress',
  'ModifySecurityGroupRules',
];
export const EC2_ACTIONS = ['DescribeSecurityGroups', 'DescribeSecurityGroupRules', ...EC2_MUTATING];

interface Peer {
  cidrIpv4?: string;
  cidrIpv6?: string;
  referencedGroupId?: string;
  description?: string;
}
interface RuleSpec extends Peer {
  ipProtocol: string;
  fromPort: number;
  toPort: number;
}

const PROTOCOL_ALIASES: Record<string, string> = {
  '6': 'tcp',
  '17': 'udp',
  '1': 'icmp',
  '58': 'icmpv6',
  all: '-1',
};

function protocol(p: string | undefined): string {
  if (p === undefined || p === '')
    throw new AwsError('MissingParameter', 'The request must contain the parameter ipProtocol');
  const s = PROTOCOL_ALIASES[p.toLowerCase()] ?? p.toLowerCase();
  if (['tcp', 'udp', 'icmp', 'icmpv6', '-1'].includes(s)) return s;
  if (/^\d+$/.test(s) && Number(s) <= 255) return s;
  throw new AwsError('InvalidParameterValue', `Invalid value '${p}' for IP protocol. Unknown protocol.`);
}

function ports(
  proto: string,
  from: number | undefined,
  to: number | undefined,
): { fromPort: number; toPort: number } {
  if (proto === '-1') return { fromPort: -1, toPort: -1 };
  if (proto === 'tcp' || proto === 'udp') {
    if (from === undefined || to === undefined) {
      throw new AwsError(
        'InvalidParameterValue',
        `Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange`,
      );
    }
    if (from < 0 || to > 65535 || from > to) {
      throw new AwsError(
        'InvalidParameterValue',
        `Invalid value '${from}-${to}' for portRange. The port range must be 0-65535 with from <= to.`,
      );
    }
    return { fromPort: from, toPort: to };
  }
  return { fromPort: from ?? -1, toPort: to ?? -1 };
}

const IPV4_CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

function cidr4(v: string): string {
  const m = IPV4_CIDR.exec(v);
  if (!m || m.slice(1, 5).some((o) => Number(o) > 255) || Number(m[5]) > 32) {
    throw new AwsError('InvalidParameterValue', `CIDR block ${v} is malformed`);
  }
  return v;
}

function cidr6(v: string): string {
  if (!/^[0-9a-fA-F:]+\/\d{1,3}$/.test(v) || Number(v.split('/')[1]) > 128) {
    throw new AwsError('InvalidParameterValue', `CIDR block ${v} is malformed`);
  }
  return v.toLowerCase();
}

function peerKey(r: Peer): string {
  return r.cidrIpv4 ?? r.cidrIpv6 ?? r.referencedGroupId ?? '';
}

function sameRule(a: RuleSpec, b: RuleSpec): boolean {
  return (
    a.ipProtocol === b.ipProtocol &&
    a.fromPort === b.fromPort &&
    a.toPort === b.toPort &&
    peerKey(a) === peerKey(b)
  );
}

function describeSpec(r: RuleSpec): string {
  const proto = r.ipProtocol === '-1' ? 'ALL' : r.ipProtocol.toUpperCase();
  return `peer: ${peerKey(r)}, ${proto}, from port: ${r.fromPort}, to port: ${r.toPort}, ALLOW`;
}

/** IpPermissions.N.* (and the legacy top-level CidrIp/IpProtocol/FromPort/ToPort) as one spec per peer. */
function ruleSpecs(p: QueryParams, state: AwsState): RuleSpec[] {
  const specs: RuleSpec[] = [];
  for (const i of p.indexes('IpPermissions')) {
    const base = `IpPermissions.${i}`;
    const proto = protocol(p.get(`${base}.IpProtocol`));
    const range = ports(proto, p.int(`${base}.FromPort`), p.int(`${base}.ToPort`));
    const peers: Peer[] = [];
    for (const j of p.indexes(`${base}.IpRanges`)) {
      const c = p.get(`${base}.IpRanges.${j}.CidrIp`);
      if (c === undefined)
        throw new AwsError('MissingParameter', 'The request must contain the parameter cidrIp');
      peers.push({ cidrIpv4: cidr4(c), description: p.get(`${base}.IpRanges.${j}.Description`) });
    }
    for (const j of p.indexes(`${base}.Ipv6Ranges`)) {
      const c = p.get(`${base}.Ipv6Ranges.${j}.CidrIpv6`);
      if (c === undefined)
        throw new AwsError('MissingParameter', 'The request must contain the parameter cidrIpv6');
      peers.push({ cidrIpv6: cidr6(c), description: p.get(`${base}.Ipv6Ranges.${j}.Description`) });
    }
    for (const key of ['Groups', 'UserIdGroupPairs']) {
      for (const j of p.indexes(`${base}.${key}`)) {
        const g = p.get(`${base}.${key}.${j}.GroupId`);
        if (!g) throw new AwsError('MissingParameter', 'The request must contain the parameter groupId');
        if (!state.groups.some((x) => x.id === g))
          throw new AwsError('InvalidGroup.NotFound', `The security group '${g}' does not exist`);
        peers.push({ referencedGroupId: g, description: p.get(`${base}.${key}.${j}.Description`) });
      }
    }
    if (p.indexes(`${base}.PrefixListIds`).length) {
      throw new AwsError('InvalidParameterValue', 'The sandbox does not emulate prefix lists');
    }
    if (!peers.length) {
      throw new AwsError(
        'InvalidParameterValue',
        'The request must specify at least one of CidrIp, CidrIpv6, SourceSecurityGroup or PrefixListId',
      );
    }
    for (const peer of peers) specs.push({ ipProtocol: proto, ...range, ...peer });
  }
  const legacyCidr = p.get('CidrIp');
  if (legacyCidr !== undefined || p.get('IpProtocol') !== undefined) {
    const proto = protocol(p.get('IpProtocol'));
    if (legacyCidr === undefined)
      throw new AwsError('MissingParameter', 'The request must contain the parameter cidrIp');
    specs.push({
      ipProtocol: proto,
      ...ports(proto, p.int('FromPort'), p.int('ToPort')),
      cidrIpv4: cidr4(legacyCidr),
    });
  }
  return specs;
}

function groupById(state: AwsState, id: string): SecurityGroup {
  if (!/^sg-[0-9a-z]+$/.test(id))
    throw new AwsError('InvalidGroupId.Malformed', `Invalid id: "${id}" (expecting "sg-...")`);
  const g = state.groups.find((x) => x.id === id);
  if (!g) throw new AwsError('InvalidGroup.NotFound', `The security group '${id}' does not exist`);
  return g;
}

/** GroupId, or GroupName which (as in AWS) only names groups of the default VPC: the sandbox has none. */
function targetGroup(p: QueryParams, state: AwsState): SecurityGroup {
  const id = p.get('GroupId');
  if (id) return groupById(state, id);
  const name = p.get('GroupName');
  if (name)
    throw new AwsError(
      'InvalidGroup.NotFound',
      `The security group '${name}' does not exist in default VPC 'vpc-0default'`,
    );
  throw new AwsError('MissingParameter', 'The request must contain the parameter groupName or groupId');
}

function dryRun(p: QueryParams): void {
  if (bool(p.get('DryRun')))
    throw new AwsError('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.', 412);
}

function filters(p: QueryParams): { name: string; values: string[] }[] {
  return p
    .indexes('Filter')
    .map((i) => ({ name: p.get(`Filter.${i}.Name`) ?? '', values: p.list(`Filter.${i}.Value`) }));
}

const ruleArn = (r: SgRule) => `arn:aws:ec2:${REGION}:${ACCOUNT_ID}:security-group-rule/${r.id}`;

function ruleXml(r: SgRule): XmlChild[] {
  return [
    ['securityGroupRuleId', r.id],
    ['groupId', r.groupId],
    ['groupOwnerId', ACCOUNT_ID],
    ['isEgress', r.isEgress],
    ['ipProtocol', r.ipProtocol],
    ['fromPort', r.fromPort],
    ['toPort', r.toPort],
    ['cidrIpv4', r.cidrIpv4],
    ['cidrIpv6', r.cidrIpv6],
    r.referencedGroupId !== undefined && [
      'referencedGroupInfo',
      [
        ['groupId', r.referencedGroupId],
        ['userId', ACCOUNT_ID],
      ],
    ],
    ['description', r.description],
    ['securityGroupRuleArn', ruleArn(r)],
  ];
}

/** Rules grouped the way DescribeSecurityGroups reports them: one IpPermission per protocol and port range. */
function permissionsXml(name: string, rules: SgRule[]): XmlChild {
  const perms = new Map<string, SgRule[]>();
  for (const r of rules) {
    const k = `${r.ipProtocol}/${r.fromPort}/${r.toPort}`;
    perms.set(k, [...(perms.get(k) ?? []), r]);
  }
  return list(name, 'item', [...perms.values()], (rs): XmlChild[] => {
    const r0 = rs[0]!;
    const v4 = rs.filter((r) => r.cidrIpv4 !== undefined);
    const v6 = rs.filter((r) => r.cidrIpv6 !== undefined);
    const groups = rs.filter((r) => r.referencedGroupId !== undefined);
    return [
      ['ipProtocol', r0.ipProtocol],
      r0.ipProtocol !== '-1' && ['fromPort', r0.fromPort],
      r0.ipProtocol !== '-1' && ['toPort', r0.toPort],
      list('groups', 'item', groups, (r) => [
        ['groupId', r.referencedGroupId],
        ['userId', ACCOUNT_ID],
        ['description', r.description],
      ]),
      list('ipRanges', 'item', v4, (r) => [
        ['cidrIp', r.cidrIpv4],
        ['description', r.description],
      ]),
      list('ipv6Ranges', 'item', v6, (r) => [
        ['cidrIpv6', r.cidrIpv6],
        ['description', r.description],
      ]),
    ];
  });
}

function groupXml(g: SecurityGroup): XmlChild[] {
  return [
    ['ownerId', g.ownerId],
    ['groupId', g.id],
    ['groupName', g.name],
    ['groupDescription', g.description],
    permissionsXml(
      'ipPermissions',
      g.rules.filter((r) => !r.isEgress),
    ),
    permissionsXml(
      'ipPermissionsEgress',
      g.rules.filter((r) => r.isEgress),
    ),
    ['vpcId', g.vpcId],
    ['securityGroupArn', `arn:aws:ec2:${REGION}:${ACCOUNT_ID}:security-group/${g.id}`],
  ];
}

function respond(action: string, reqId: string, nodes: XmlChild[]): string {
  return xmlDocument(`${action}Response`, EC2_XMLNS, [['requestId', reqId], ...nodes]);
}

function describeSecurityGroups(p: QueryParams, state: AwsState, reqId: string): string {
  dryRun(p);
  const ids = p.list('GroupId');
  const names = p.list('GroupName');
  for (const n of names)
    throw new AwsError(
      'InvalidGroup.NotFound',
      `The security group '${n}' does not exist in default VPC 'vpc-0default'`,
    );
  let groups = ids.length ? ids.map((id) => groupById(state, id)) : [...state.groups];
  for (const f of filters(p)) {
    const has = (v: string | undefined) => v !== undefined && f.values.includes(v);
    const ingress = (g: SecurityGroup) => g.rules.filter((r) => !r.isEgress);
    const test: Record<string, (g: SecurityGroup) => boolean> = {
      'group-id': (g) => has(g.id),
      'group-name': (g) => has(g.name),
      'vpc-id': (g) => has(g.vpcId),
      'owner-id': (g) => has(g.ownerId),
      description: (g) => has(g.description),
      'ip-permission.cidr': (g) => ingress(g).some((r) => has(r.cidrIpv4)),
      'ip-permission.ipv6-cidr': (g) => ingress(g).some((r) => has(r.cidrIpv6)),
      'ip-permission.group-id': (g) => ingress(g).some((r) => has(r.referencedGroupId)),
      'ip-permission.protocol': (g) => ingress(g).some((r) => has(r.ipProtocol)),
      'ip-permission.from-port': (g) => ingress(g).some((r) => has(String(r.fromPort))),
      'ip-permission.to-port': (g) => ingress(g).some((r) => has(String(r.toPort))),
    };
    const t = test[f.name];
    if (!t) throw new AwsError('InvalidParameterValue', `The filter '${f.name}' is invalid`);
    groups = groups.filter(t);
  }
  return respond('DescribeSecurityGroups', reqId, [list('securityGroupInfo', 'item', groups, groupXml)]);
}

function allRules(state: AwsState): SgRule[] {
  return state.groups.flatMap((g) => g.rules);
}

function describeSecurityGroupRules(p: QueryParams, state: AwsState, reqId: string): string {
  dryRun(p);
  let rules = allRules(state);
  const ids = p.list('SecurityGroupRuleId');
  for (const id of ids) {
    if (!rules.some((r) => r.id === id)) {
      throw new AwsError(
        'InvalidSecurityGroupRuleId.NotFound',
        `The security group rule ID '${id}' does not exist`,
      );
    }
  }
  if (ids.length) rules = rules.filter((r) => ids.includes(r.id));
  for (const f of filters(p)) {
    if (f.name === 'group-id') rules = rules.filter((r) => f.values.includes(r.groupId));
    else if (f.name === 'security-group-rule-id') rules = rules.filter((r) => f.values.includes(r.id));
    else if (f.name.startsWith('tag:') || f.name === 'tag-key') rules = [];
    else throw new AwsError('InvalidParameterValue', `The filter '${f.name}' is invalid`);
  }
  return respond('DescribeSecurityGroupRules', reqId, [list('securityGroupRuleSet', 'item', rules, ruleXml)]);
}

function authorizeIngress(p: QueryParams, state: AwsState, reqId: string): string {
  const g = targetGroup(p, state);
  const specs = ruleSpecs(p, state);
  if (!specs.length)
    throw new AwsError('MissingParameter', 'The request must contain the parameter ipPermissions');
  const ingress = g.rules.filter((r) => !r.isEgress);
  specs.forEach((s, i) => {
    if (ingress.some((r) => sameRule(r, s)) || specs.slice(0, i).some((o) => sameRule(o, s))) {
      throw new AwsError(
        'InvalidPermission.Duplicate',
        `the specified rule "${describeSpec(s)}" already exists`,
      );
    }
  });
  dryRun(p);
  const added: SgRule[] = specs.map((s) => ({
    id: newRuleId(),
    groupId: g.id,
    isEgress: false,
    ...dropUndefined(s),
  }));
  g.rules.push(...added);
  return respond('AuthorizeSecurityGroupIngress', reqId, [
    ['return', true],
    list('securityGroupRuleSet', 'item', added, ruleXml),
  ]);
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function revokeIngress(p: QueryParams, state: AwsState, reqId: string): string {
  const ruleIds = p.list('SecurityGroupRuleId');
  const g =
    !p.get('GroupId') && !p.get('GroupName') && ruleIds.length
      ? groupOfRule(state, ruleIds[0]!)
      : targetGroup(p, state);
  const ingress = g.rules.filter((r) => !r.isEgress);
  const doomed: SgRule[] = [];
  for (const id of ruleIds) {
    const r = ingress.find((x) => x.id === id);
    if (!r)
      throw new AwsError(
        'InvalidSecurityGroupRuleId.NotFound',
        `The security group rule ID '${id}' does not exist`,
      );
    doomed.push(r);
  }
  const specs = ruleSpecs(p, state);
  for (const s of specs) {
    const r = ingress.find((x) => sameRule(x, s));
    // In a VPC a permission that matches nothing is an error (EC2-Classic and default VPCs ignore it).
    if (!r)
      throw new AwsError(
        'InvalidPermission.NotFound',
        'The specified rule does not exist in this security group.',
      );
    doomed.push(r);
  }
  if (!doomed.length)
    throw new AwsError(
      'MissingParameter',
      'The request must contain the parameter ipPermissions or securityGroupRuleIds',
    );
  dryRun(p);
  g.rules = g.rules.filter((r) => !doomed.includes(r));
  return respond('RevokeSecurityGroupIngress', reqId, [
    ['return', true],
    list('revokedSecurityGroupRuleSet', 'item', [...new Set(doomed)], (r): XmlChild[] => [
      ['securityGroupRuleId', r.id],
      ['groupId', r.groupId],
      ['isEgress', r.isEgress],
      ['ipProtocol', r.ipProtocol],
      ['fromPort', r.fromPort],
      ['toPort', r.toPort],
      ['cidrIpv4', r.cidrIpv4],
      ['cidrIpv6', r.cidrIpv6],
      ['referencedGroupId', r.referencedGroupId],
      ['description', r.description],
    ]),
  ]);
}

function groupOfRule(state: AwsState, id: string): SecurityGroup {
  const g = state.groups.find((x) => x.rules.some((r) => r.id === id));
  if (!g)
    throw new AwsError(
      'InvalidSecurityGroupRuleId.NotFound',
      `The security group rule ID '${id}' does not exist`,
    );
  return g;
}

function modifyRules(p: QueryParams, state: AwsState, reqId: string): string {
  const gid = p.get('GroupId');
  if (!gid) throw new AwsError('MissingParameter', 'The request must contain the parameter GroupId');
  const g = groupById(state, gid);
  const updates = p.indexes('SecurityGroupRule').map((i) => {
    const base = `SecurityGroupRule.${i}`;
    const id = p.get(`${base}.SecurityGroupRuleId`);
    if (!id)
      throw new AwsError('MissingParameter', 'The request must contain the parameter SecurityGroupRuleId');
    const rule = g.rules.find((r) => r.id === id);
    if (!rule)
      throw new AwsError(
        'InvalidSecurityGroupRuleId.NotFound',
        `The security group rule ID '${id}' does not exist`,
      );
    const s = `${base}.SecurityGroupRule`;
    const proto = protocol(p.get(`${s}.IpProtocol`));
    const c4 = p.get(`${s}.CidrIpv4`);
    const c6 = p.get(`${s}.CidrIpv6`);
    const ref = p.get(`${s}.ReferencedGroupId`);
    if (p.get(`${s}.PrefixListId`))
      throw new AwsError('InvalidParameterValue', 'The sandbox does not emulate prefix lists');
    if ([c4, c6, ref].filter((x) => x !== undefined).length !== 1) {
      throw new AwsError(
        'InvalidParameterCombination',
        'Specify exactly one of CidrIpv4, CidrIpv6, PrefixListId or ReferencedGroupId',
      );
    }
    if (ref !== undefined) groupById(state, ref);
    const spec: RuleSpec = dropUndefined({
      ipProtocol: proto,
      ...ports(proto, p.int(`${s}.FromPort`), p.int(`${s}.ToPort`)),
      cidrIpv4: c4 === undefined ? undefined : cidr4(c4),
      cidrIpv6: c6 === undefined ? undefined : cidr6(c6),
      referencedGroupId: ref,
      description: p.get(`${s}.Description`),
    });
    return { rule, spec };
  });
  if (!updates.length)
    throw new AwsError('MissingParameter', 'The request must contain the parameter SecurityGroupRule');
  for (const u of updates) {
    const clash = g.rules.find(
      (r) =>
        r !== u.rule &&
        r.isEgress === u.rule.isEgress &&
        sameRule(r, u.spec) &&
        !updates.some((o) => o.rule === r),
    );
    if (clash)
      throw new AwsError(
        'InvalidPermission.Duplicate',
        `the specified rule "${describeSpec(u.spec)}" already exists`,
      );
  }
  dryRun(p);
  // The rule keeps its id: ModifySecurityGroupRules replaces properties in place.
  g.rules = g.rules.map((r) => {
    const u = updates.find((x) => x.rule === r);
    return u ? { id: r.id, groupId: r.groupId, isEgress: r.isEgress, ...u.spec } : r;
  });
  return respond('ModifySecurityGroupRules', reqId, [['return', true]]);
}

const HANDLERS: Record<string, (p: QueryParams, s: AwsState, reqId: string) => string> = {
  DescribeSecurityGroups: describeSecurityGroups,
  DescribeSecurityGroupRules: describeSecurityGroupRules,
  AuthorizeSecurityGroupIngress: authorizeIngress,
  RevokeSecurityGroupIngress: revokeIngress,
  ModifySecurityGroupRules: modifyRules,
};

export function handleEc2(action: string, p: QueryParams, state: AwsState, reqId: string): string {
  const h = HANDLERS[action];
  if (!h)
    throw new AwsError(
      'InvalidAction',
      `The action ${action} is not valid for this web service (the sandbox emulates ${EC2_ACTIONS.join(', ')}).`,
    );
  return h(p, state, reqId);
}

export function ec2ErrorXml(e: AwsError, reqId: string): string {
  const nodes: XmlNode[] = [
    [
      'Errors',
      [
        [
          'Error',
          [
            ['Code', e.code],
            ['Message', e.message],
          ],
        ],
      ],
    ],
    ['RequestID', reqId],
  ];
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Response>${xml(nodes)}</Response>`;
}
