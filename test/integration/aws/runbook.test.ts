// The AWS kinds inside the real engine (runSession, as `cutover plan` / `run` / `rollback` use it):
// the plan's exact lines with no mutating call, a denied flip rolling back the fence before it, and a
// rollback from the journal alone putting the group and the record back.
import { DescribeSecurityGroupRulesCommand, EC2Client } from '@aws-sdk/client-ec2';
import {
  ChangeResourceRecordSetsCommand,
  GetChangeCommand,
  ListResourceRecordSetsCommand,
  Route53Client,
} from '@aws-sdk/client-route-53';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { queryServer } from '../../../src/adapters/dns.js';
import type { EngineEvent } from '../../../src/engine/events.js';
import { calls, injectFault, resetCalls } from '../../../src/sandbox/admin-client.js';
import { resetSandbox, type SandboxEnv } from '../../../src/sandbox/index.js';
import { runSession } from '../../../src/session.js';
import { sandboxEnv } from '../../setup/sandbox-env.js';
import { upsertRecord } from '../sandbox/helpers.js';

let env: SandboxEnv;
let dir: string;
let ec2: EC2Client;
let r53: Route53Client;

const RUNBOOK = `version: 1
name: aws-kinds-it
steps:
  - id: fence
    kind: aws.security-group.restrict
    with:
      groupId: \${env.SANDBOX_SECURITY_GROUP_ID}
      port: 3306
      allow: ["\${env.SANDBOX_ADMIN_CIDR}", 127.0.0.9/32]
  - id: flip
    kind: aws.route53.flip
    with:
      zoneId: \${env.SANDBOX_ZONE_ID}
      name: \${env.SANDBOX_RECORD_NAME}
      type: CNAME
      value: \${env.SANDBOX_DB_NEW_NAME}
      resolvers: ["\${env.SANDBOX_DNS_SERVER}"]
      syncInterval: 200ms
      resolveInterval: 100ms
`;

const SET_TTL = `  - id: ttl
    kind: aws.route53.set-ttl
    with:
      zoneId: \${env.SANDBOX_ZONE_ID}
      name: \${env.SANDBOX_RECORD_NAME}
      type: CNAME
      ttl: 1
      syncInterval: 100ms
`;
const FLIP = (extra: string) => `  - id: flip
    kind: aws.route53.flip
    with:
      zoneId: \${env.SANDBOX_ZONE_ID}
      name: \${env.SANDBOX_RECORD_NAME}
      type: CNAME
      value: \${env.SANDBOX_DB_NEW_NAME}
      resolvers: ["\${env.SANDBOX_DNS_SERVER}"]
      syncInterval: 100ms
      resolveInterval: 100ms
${extra}`;

/** The record's TTL raised to `ttl` (INSYNC), so a set-ttl step has something to lower. */
async function recordTtl(ttl: number) {
  const res = await r53.send(
    new ChangeResourceRecordSetsCommand(upsertRecord(env, env.SANDBOX_DB_OLD_NAME!, ttl)),
  );
  const id = res.ChangeInfo!.Id!;
  while ((await r53.send(new GetChangeCommand({ Id: id }))).ChangeInfo?.Status !== 'INSYNC')
    await new Promise((r) => setTimeout(r, 100));
}

async function rules() {
  const res = await ec2.send(
    new DescribeSecurityGroupRulesCommand({
      Filters: [{ Name: 'group-id', Values: [env.SANDBOX_SECURITY_GROUP_ID] }],
    }),
  );
  return (res.SecurityGroupRules ?? [])
    .map(({ SecurityGroupRuleId: _id, SecurityGroupRuleArn: _arn, ...props }) => props)
    .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

async function records() {
  return (await r53.send(new ListResourceRecordSetsCommand({ HostedZoneId: env.SANDBOX_ZONE_ID })))
    .ResourceRecordSets;
}

const cname = async () =>
  (await queryServer(env.SANDBOX_RECORD_NAME, 'CNAME', env.SANDBOX_DNS_SERVER!)).values;

async function session(what: Parameters<typeof runSession>[0]) {
  const events: EngineEvent[] = [];
  const result = await runSession(what, {
    runsDir: join(dir, 'runs'),
    yes: true,
    render: 'json',
    onEvent: (e) => events.push(e),
  });
  return { result, events };
}

beforeAll(() => {
  env = sandboxEnv();
  dir = mkdtempSync(join(tmpdir(), 'cutover-aws-it-'));
  writeFileSync(join(dir, 'aws.yaml'), RUNBOOK);
  const cfg = {
    endpoint: env.CUTOVER_AWS_ENDPOINT,
    region: 'us-east-1',
    credentials: { accessKeyId: 'sandbox', secretAccessKey: 'sandbox' },
  };
  ec2 = new EC2Client(cfg);
  r53 = new Route53Client(cfg);
});

afterEach(async () => {
  await resetSandbox(env);
});

afterAll(() => {
  ec2?.destroy();
  r53?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('AWS kinds in the engine', () => {
  it('plan prints the rules it would revoke and add and the record before → after, with no mutating call', async () => {
    await resetCalls(env);
    const { result, events } = await session({ mode: 'plan', file: join(dir, 'aws.yaml') });
    expect(result.exitCode).toBe(0);
    const plan = Object.fromEntries(events.flatMap((e) => (e.type === 'plan' ? [[e.stepId, e.lines]] : [])));
    const sg = env.SANDBOX_SECURITY_GROUP_ID;
    expect(plan.fence).toEqual([
      `would authorize ${sg} tcp/3306 from 127.0.0.9/32 (cutover allowlist)`,
      `would revoke ${sg} tcp/3306 from 127.0.0.0/24 (app servers)`,
      'note: existing connections survive a security-group revoke (tracked connections stay open): pair this step with mysql.connections.drain',
    ]);
    expect(plan.flip?.[0]).toBe(
      `would upsert ${env.SANDBOX_RECORD_NAME} CNAME in zone ${env.SANDBOX_ZONE_ID} (${env.SANDBOX_DB_OLD_NAME} TTL 1 → ${env.SANDBOX_DB_NEW_NAME} TTL 1)`,
    );
    const report = await calls(env);
    expect(report.mutatingCalls).toBe(0);
    expect(report.total).toBeGreaterThan(0);
  });

  it('a denied flip fails with one line and rolls back the fence before it', async () => {
    const rulesBefore = await rules();
    const recordsBefore = await records();
    await injectFault(env, { action: 'route53:ChangeResourceRecordSets', mode: 'deny' });
    const { result, events } = await session({ mode: 'run', file: join(dir, 'aws.yaml') });
    expect(result.exitCode).toBe(1);
    expect(result.status).toBe('rolled-back');
    const failed = events.find((e) => e.type === 'step' && e.state === 'failed');
    expect(failed).toMatchObject({
      stepId: 'flip',
      error: {
        code: 'AWS_ACCESS_DENIED',
        message: `route53 ChangeResourceRecordSets on zone ${env.SANDBOX_ZONE_ID} denied (AccessDenied): the credentials need route53:ChangeResourceRecordSets on arn:aws:route53:::hostedzone/${env.SANDBOX_ZONE_ID}`,
      },
    });
    expect(events.some((e) => e.type === 'step' && e.stepId === 'fence' && e.state === 'rolled-back')).toBe(
      true,
    );
    expect(await rules()).toEqual(rulesBefore);
    expect(await records()).toEqual(recordsBefore);
    expect(await cname()).toEqual([env.SANDBOX_DB_OLD_NAME]);
  });

  it('cutover rollback undoes a finished run from its journal', async () => {
    const rulesBefore = await rules();
    const recordsBefore = await records();
    const run = await session({ mode: 'run', file: join(dir, 'aws.yaml') });
    expect(run.result.exitCode).toBe(0);
    expect(await cname()).toEqual([env.SANDBOX_DB_NEW_NAME]);
    expect(await rules()).not.toEqual(rulesBefore);

    const back = await session({ mode: 'rollback', runDir: run.result.runDir });
    expect(back.result.status).toBe('rolled-back');
    expect(await rules()).toEqual(rulesBefore);
    expect(await records()).toEqual(recordsBefore);
    expect(await cname()).toEqual([env.SANDBOX_DB_OLD_NAME]);
  });

  it('issue 13: the old-TTL guard uses the TTL before a lowering earlier in the same run', async () => {
    await recordTtl(4);
    const file = join(dir, 'lower-then-flip.yaml');
    writeFileSync(file, `version: 1\nname: ttl-guard\nsteps:\n${SET_TTL}${FLIP('      maxOldTtl: 2\n')}`);
    const { result, events } = await session({ mode: 'run', file });
    expect(result.exitCode).toBe(1);
    const failed = events.find((e) => e.type === 'step' && e.state === 'failed');
    expect(failed).toMatchObject({ stepId: 'flip', error: { code: 'TTL_TOO_HIGH' } });
    expect((failed as { error: { message: string } }).error.message).toMatch(/lowered from TTL 4s/);
    expect(await cname()).toEqual([env.SANDBOX_DB_OLD_NAME]);
  });

  it('issue 13: a flip after a lowering in an earlier run waits until answers cached with the old TTL expire', async () => {
    await recordTtl(4);
    const lower = join(dir, 'lower.yaml');
    writeFileSync(lower, `version: 1\nname: lower\nsteps:\n${SET_TTL}`);
    const a = await session({ mode: 'run', file: lower });
    expect(a.result.exitCode).toBe(0);
    const done = readFileSync(join(a.result.runDir!, 'journal.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .find((r) => r.type === 'step-done' && r.stepId === 'ttl');
    const safeAfter = Date.parse(done.outputs.safeAfter);
    const flip = join(dir, 'flip.yaml');
    writeFileSync(flip, `version: 1\nname: flip\nsteps:\n${FLIP('')}`);
    const b = await session({ mode: 'run', file: flip });
    expect(b.result.exitCode).toBe(0);
    // The record's own TTL is 1s now: without the lookup the flip would be over well before this.
    expect(Date.now()).toBeGreaterThanOrEqual(safeAfter);
  });

  it('issue 13: the plan of a restore after a restrict is planned against the fenced group, with no mutating call', async () => {
    const file = join(dir, 'fence-reopen.yaml');
    writeFileSync(
      file,
      `version: 1
name: fence-reopen
steps:
  - id: fence
    kind: aws.security-group.restrict
    with:
      groupId: \${env.SANDBOX_SECURITY_GROUP_ID}
      port: 3306
      allow: ["\${env.SANDBOX_ADMIN_CIDR}", 127.0.0.9/32]
  - id: reopen
    kind: aws.security-group.restore
    with:
      groupId: \${env.SANDBOX_SECURITY_GROUP_ID}
      port: 3306
      rules: \${steps.fence.outputs.before}
`,
    );
    await resetCalls(env);
    const { result, events } = await session({ mode: 'plan', file });
    expect(result.exitCode).toBe(0);
    const plan = Object.fromEntries(events.flatMap((e) => (e.type === 'plan' ? [[e.stepId, e.lines]] : [])));
    const sg = env.SANDBOX_SECURITY_GROUP_ID;
    expect(plan.reopen).toEqual([
      `would authorize ${sg} tcp/3306 from 127.0.0.0/24 (app servers)`,
      `would revoke ${sg} tcp/3306 from 127.0.0.9/32 (cutover allowlist)`,
    ]);
    expect((await calls(env)).mutatingCalls).toBe(0);
  });

  it('issue 13: the plan of a flip after a set-ttl sees the lowered record and still guards the TTL before it', async () => {
    await recordTtl(4);
    const file = join(dir, 'plan-lower-then-flip.yaml');
    writeFileSync(
      file,
      `version: 1\nname: ttl-guard-plan\nsteps:\n${SET_TTL}${FLIP('      maxOldTtl: 2\n')}`,
    );
    await resetCalls(env);
    const { events } = await session({ mode: 'plan', file });
    // After a recorded write the engine reports the flip's failure as deferred (its call), but it is
    // found: the plan reads the lowered record and still knows the TTL before.
    const said = events.flatMap((e) => (e.type === 'log' && e.stepId === 'flip' ? [e.message] : []));
    expect(said.join('\n')).toMatch(/was lowered from TTL 4s .* above maxOldTtl 2s/);
    expect((await calls(env)).mutatingCalls).toBe(0);
  });

  it('C3: plan and run of a flip on the private zone without resolvers exit 1 naming the step, with no change', async () => {
    const file = join(dir, 'flip-no-resolvers.yaml');
    writeFileSync(
      file,
      `version: 1
name: flip-no-resolvers
steps:
  - id: flip-dns
    kind: aws.route53.flip
    with:
      zoneId: \${env.SANDBOX_ZONE_ID}
      name: \${env.SANDBOX_RECORD_NAME}
      type: CNAME
      value: \${env.SANDBOX_DB_NEW_NAME}
`,
    );
    const recordsBefore = await records();
    await resetCalls(env);
    for (const mode of ['plan', 'run'] as const) {
      const { result, events } = await session({ mode, file });
      expect(result.exitCode).toBe(1);
      // Refused by the step's preflight, before the first step runs.
      const said = events.flatMap((e) => (e.type === 'log' && e.stepId === 'flip-dns' ? [e.message] : []));
      expect(said.join('\n')).toMatch(/^preflight: .*private hosted zone.*resolvers:/m);
    }
    expect((await calls(env)).mutatingCalls).toBe(0);
    expect(await records()).toEqual(recordsBefore);
  });

  it('C3 / issue 13: a run whose later flip has no resolvers, or whose fence names a missing group, is refused before the fence', async () => {
    const rulesBefore = await rules();
    await resetCalls(env);
    const cases = [
      RUNBOOK.replace(/ {6}resolvers: .*\n/, ''),
      RUNBOOK.replace('groupId: ${env.SANDBOX_SECURITY_GROUP_ID}', 'groupId: sg-0doesnotexist1'),
    ];
    for (const [i, text] of cases.entries()) {
      const file = join(dir, `refused-${i}.yaml`);
      writeFileSync(file, text);
      const { result, events } = await session({ mode: 'run', file });
      expect(result.exitCode).toBe(1);
      expect(events.some((e) => e.type === 'step' && e.state === 'running')).toBe(false);
      const said = events.flatMap((e) => (e.type === 'log' && e.level === 'error' ? [e.message] : []));
      expect(said.join('\n')).toMatch(
        i === 0 ? /preflight: .*private hosted zone/ : /preflight: .*sg-0doesnotexist1/,
      );
    }
    expect((await calls(env)).mutatingCalls).toBe(0);
    expect(await rules()).toEqual(rulesBefore);
  });
});
