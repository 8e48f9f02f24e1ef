// IAM needs of the Route 53 kinds: reads on the zone for the plan; for the run, the change itself,
// narrowed by condition keys to the record's name, types and actions.
import { type AwsIamNeed, literal } from './common.js';
import { displayName, normalizeZoneId } from './records.js';

function zoneResource(r: Record<string, unknown>): string[] {
  const z = literal(r.zoneId);
  return [z ? `arn:aws:route53:::hostedzone/${normalizeZoneId(z)}` : '*'];
}

/**
 * A record name as Route 53 compares it in this condition key: lower case, no trailing dot, and
 * every character but a-z 0-9 - _ . as a backslash and three octal digits (a wildcard is \052).
 */
export function normalizedRecordName(name: string): string {
  return displayName(name).replace(
    /[^a-z0-9\-_.]/g,
    (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`,
  );
}

export function readRecordIam(r: Record<string, unknown>): AwsIamNeed[] {
  return [{ mode: 'read', actions: ['route53:ListResourceRecordSets'], resources: zoneResource(r) }];
}

/** ChangeResourceRecordSets on the zone, plus GetChange to wait for INSYNC (both run-only). */
export function changeRecordIam(
  r: Record<string, unknown>,
  types: string[],
  actions: string[],
  extraRead: string[] = [],
): AwsIamNeed[] {
  // Not literal(): a wildcard record name is a real name here, escaped below.
  const name = typeof r.name === 'string' && r.name && !r.name.includes('${') ? r.name : undefined;
  const wantTypes = types.filter((t) => /^[A-Z]+$/.test(t));
  const condition: Record<string, string[]> = {};
  if (name) condition['route53:ChangeResourceRecordSetsNormalizedRecordNames'] = [normalizedRecordName(name)];
  if (wantTypes.length)
    condition['route53:ChangeResourceRecordSetsRecordTypes'] = [...new Set(wantTypes)].sort();
  condition['route53:ChangeResourceRecordSetsActions'] = [...new Set(actions)].sort();
  return [
    {
      mode: 'write',
      actions: ['route53:ChangeResourceRecordSets'],
      resources: zoneResource(r),
      condition: { 'ForAllValues:StringEquals': condition },
    },
    ...(extraRead.length ? [{ mode: 'write' as const, actions: extraRead, resources: zoneResource(r) }] : []),
    { mode: 'write', actions: ['route53:GetChange'], resources: ['arn:aws:route53:::change/*'] },
  ];
}
