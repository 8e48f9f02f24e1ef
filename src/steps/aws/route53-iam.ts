// IAM needs of the Route 53 kinds: reads on the zone for the plan; for the run, the change itself,
// narrowed by condition keys to the record's name, types and actions.
import { type AwsIamNeed, literal } from './common.js';
import { displayName, normalizeZoneId } from './records.js';

function zoneResource(r: Record<string, unknown>): string[] {
  const z = literal(r.zoneId);
  return [z ? `arn:aws:route53:::hostedzone/${normalizeZoneId(z)}` : '*'];
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
  const name = literal(r.name);
  const wantTypes = types.filter((t) => /^[A-Z]+$/.test(t));
  const condition: Record<string, string[]> = {};
  if (name) condition['route53:ChangeResourceRecordSetsNormalizedRecordNames'] = [displayName(name)];
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
