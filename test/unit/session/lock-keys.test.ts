// What a run locks: its targets (database servers, zone + record, security groups), not its
// runbook's name or folder, so two differently named runbooks against one server exclude each other.
import { describe, expect, it } from 'vitest';
import { loadRunbookText } from '../../../src/runbook/load.js';
import { prepareRunbook } from '../../../src/runbook/validate.js';
import { lockKeys } from '../../../src/session.js';

function lockKeysOf(name: string): string[] {
  const text = `version: 1
name: ${name}
params: { zone: Z123, record: db.shop.internal, sg: sg-0abc1234 }
databases:
  old: { host: old-db.internal, port: 3306, user: cutover, password: { env: PW } }
steps:
  - id: fence
    kind: aws.security-group.restrict
    with: { groupId: "\${params.sg}", port: 3306, allow: [10.0.5.10/32] }
  - id: flip
    kind: aws.route53.flip
    with: { zoneId: "\${params.zone}", name: "\${params.record}", type: CNAME, value: new-db.internal, ttl: 5 }
`;
  return lockKeys(
    prepareRunbook(loadRunbookText(`/rb/${name}.yaml`, text), { env: { PW: 'pw-secret' } }),
  ).sort();
}

describe('lock keys', () => {
  it('are the targets, with templates rendered, whatever the runbook is called', () => {
    const a = lockKeysOf('shop-cutover');
    expect(a).toEqual(['db-old-db.internal:3306', 'dns-Z123-db.shop.internal', 'sg-sg-0abc1234']);
    expect(lockKeysOf('shop-cutover-copy')).toEqual(a);
  });
});
