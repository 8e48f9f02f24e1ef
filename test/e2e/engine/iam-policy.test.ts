// Issue 13, `cutover iam-policy` through the built CLI: the actions of before/after checks and of
// `rollback:` overrides are in the policy; a resource the runbook cannot name before the run (an
// unset variable, a step output) is said on stderr, step by step, and `--strict` refuses it.
import { afterEach, describe, expect, it } from 'vitest';
import type { PolicyDocument } from '../../../src/steps/aws/iam-policy.js';
import { runCli } from '../../helpers/cli.js';
import { writeRunbook } from '../../helpers/runbooks.js';
import { type Workspace, workspace } from '../../helpers/workspace.js';

let ws: Workspace | undefined;
afterEach(() => ws?.cleanup());

function runbook(w: Workspace): string {
  return writeRunbook(w.dir, {
    name: 'iam-checks',
    // The group and the zone come from the environment: unset, nothing names them.
    params: {
      cluster: 'shop-aurora',
      group: '${env.IAM_TEST_GROUP}',
      zone: '${env.IAM_TEST_ZONE}',
      region: 'eu-west-1',
    },
    steps: [
      {
        id: 'fence',
        kind: 'aws.security-group.restrict',
        with: { groupId: '${params.group}', port: 3306, allow: ['10.0.5.10/32'], region: '${params.region}' },
        // The cluster must be up before the fence: a read only this check makes.
        before: [
          { kind: 'aws.rds.wait', with: { cluster: '${params.cluster}', region: '${params.region}' } },
        ],
        // The override also reopens a second group: writes only this override makes.
        rollback: {
          kind: 'aws.security-group.restore',
          with: { groupId: 'sg-0def', port: 3306, rules: [], region: '${params.region}' },
        },
      },
      {
        id: 'ttl',
        kind: 'aws.route53.set-ttl',
        with: { zoneId: '${params.zone}', name: 'db.shop.internal', type: 'CNAME', ttl: 5 },
        after: [{ kind: 'aws.rds.describe', with: { instance: 'shop-rds', region: '${params.region}' } }],
      },
    ],
  });
}

const NAMED = { env: { IAM_TEST_GROUP: 'sg-0abc', IAM_TEST_ZONE: 'Z0123' } };
const UNSET = { env: { IAM_TEST_GROUP: undefined, IAM_TEST_ZONE: undefined } };

const actions = (doc: PolicyDocument) => new Set(doc.Statement.flatMap((s) => s.Action));
const resourcesOf = (doc: PolicyDocument, action: string) =>
  doc.Statement.filter((s) => s.Action.includes(action)).flatMap((s) => s.Resource);

describe('cutover iam-policy (issue 13)', () => {
  it('allows what before/after checks and rollback overrides call, on the resources they name', async () => {
    ws = workspace();
    const rb = runbook(ws);
    const run = await runCli(['iam-policy', rb], { cwd: ws.dir, ...NAMED });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toBe('');
    const doc = JSON.parse(run.stdout) as PolicyDocument;
    // The before check (aws.rds.wait of the cluster) and the after check (aws.rds.describe of an
    // instance, whose cluster it cannot name); the steps themselves make no RDS call.
    expect(resourcesOf(doc, 'rds:DescribeDBClusters').sort()).toEqual([
      'arn:aws:rds:eu-west-1:*:cluster:*',
      'arn:aws:rds:eu-west-1:*:cluster:shop-aurora',
    ]);
    expect(resourcesOf(doc, 'rds:DescribeDBInstances')).toContain('arn:aws:rds:eu-west-1:*:db:shop-rds');
    // The rollback override (aws.security-group.restore of sg-0def) writes where the fence does not.
    expect(resourcesOf(doc, 'ec2:AuthorizeSecurityGroupIngress')).toEqual([
      'arn:aws:ec2:eu-west-1:*:security-group/sg-0abc',
      'arn:aws:ec2:eu-west-1:*:security-group/sg-0def',
    ]);

    // A plan runs the checks (reads) but never a rollback: its policy has the checks' reads only.
    const plan = await runCli(['iam-policy', rb, '--mode', 'plan'], { cwd: ws.dir, ...NAMED });
    expect(plan.code, plan.stderr).toBe(0);
    const planDoc = JSON.parse(plan.stdout) as PolicyDocument;
    expect(actions(planDoc).has('rds:DescribeDBClusters')).toBe(true);
    expect(actions(planDoc).has('ec2:AuthorizeSecurityGroupIngress')).toBe(false);
    expect(plan.stdout).not.toContain('sg-0def');
  });

  it('names on stderr each step whose resource widens to "*" (an unset variable), exit 0; --strict refuses with one line, exit 2', async () => {
    ws = workspace();
    const rb = runbook(ws);
    const wide = await runCli(['iam-policy', rb], { cwd: ws.dir, ...UNSET });
    expect(wide.code, wide.stderr).toBe(0);
    const doc = JSON.parse(wide.stdout) as PolicyDocument;
    expect(resourcesOf(doc, 'ec2:RevokeSecurityGroupIngress')).toEqual(['*']);
    const lines = wide.stderr.trim().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(
        /^cutover: warning: step fence \[aws\.security-group\.restrict\]: ec2:AuthorizeSecurityGroupIngress, ec2:ModifySecurityGroupRules, ec2:RevokeSecurityGroupIngress on Resource "\*": .*; not named: groupId$/,
      ),
      expect.stringMatching(
        /^cutover: warning: step ttl \[aws\.route53\.set-ttl\]: route53:ChangeResourceRecordSets, route53:ListResourceRecordSets on Resource "\*": .*; not named: zoneId$/,
      ),
    ]);

    const strict = await runCli(['iam-policy', rb, '--strict'], { cwd: ws.dir, ...UNSET });
    expect(strict.code).toBe(2);
    expect(strict.stdout).toBe('');
    expect(strict.stderr.trim().split('\n')).toEqual([
      'cutover: --strict: fence, ttl would be allowed on Resource "*" (a resource not named before the run): name it (set the variable, list groupIds rather than an instance), or drop --strict',
    ]);
    // Every resource named: --strict passes.
    const named = await runCli(['iam-policy', rb, '--strict'], { cwd: ws.dir, ...NAMED });
    expect(named.code, named.stderr).toBe(0);
  });
});
