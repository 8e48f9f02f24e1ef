import { describe, expect, it } from 'vitest';
import { callAws, type CallSite, describeAwsError } from '../../../src/adapters/aws.js';

const site: CallSite = {
  service: 'route53',
  op: 'ChangeResourceRecordSets',
  resource: 'zone Z0123',
  arn: 'arn:aws:route53:::hostedzone/Z0123',
};
const awsError = (name: string, status: number, message = name) =>
  Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });

describe('AWS errors as one line', () => {
  it('names the action and ARN the credentials need when denied', () => {
    const e = describeAwsError(
      awsError('AccessDenied', 403, 'User: arn:aws:iam::1:user/x is not authorized'),
      site,
    );
    expect(e.code).toBe('AWS_ACCESS_DENIED');
    expect(e.message).toBe(
      'route53 ChangeResourceRecordSets on zone Z0123 denied (AccessDenied): the credentials need route53:ChangeResourceRecordSets on arn:aws:route53:::hostedzone/Z0123',
    );
  });
  it('maps invalid change batches, not-found and unreachable endpoints', () => {
    expect(
      describeAwsError(
        awsError('InvalidChangeBatch', 400, 'Tried to delete resource record set\n but it was not found'),
        site,
      ).message,
    ).toMatch(
      /^route53 ChangeResourceRecordSets on zone Z0123 rejected the change batch \(InvalidChangeBatch\): Tried to delete resource record set but it was not found; /,
    );
    const nf = describeAwsError(awsError('InvalidGroup.NotFound', 400), {
      service: 'ec2',
      op: 'DescribeSecurityGroupRules',
      resource: 'security group sg-1',
      arn: '*',
      region: 'eu-west-1',
    });
    expect(nf.code).toBe('AWS_NOT_FOUND');
    expect(nf.message).toContain('check the id and the region (eu-west-1)');
    const down = describeAwsError(
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      { ...site, endpoint: 'http://127.0.0.1:4566' },
    );
    expect(down.code).toBe('AWS_UNREACHABLE');
    for (const e of [nf, down]) expect(e.message).not.toContain('\n');
  });
});

describe('callAws retries', () => {
  const fast = { maxAttempts: 5, baseDelayMs: 1, maxDelayMs: 2 };

  it('retries throttling until the call goes through', async () => {
    let calls = 0;
    const retries: string[] = [];
    const out = await callAws(
      site,
      { onRetry: (m) => retries.push(m) },
      async () => {
        if (++calls < 3) throw awsError('Throttling', 400, 'Rate exceeded');
        return 'ok';
      },
      fast,
    );
    expect(out).toBe('ok');
    expect(calls).toBe(3);
    expect(retries[0]).toMatch(
      /^route53 ChangeResourceRecordSets on zone Z0123: Throttling, retry 1\/4 in \d+ms$/,
    );
  });

  it('gives up after the last attempt with one line', async () => {
    let calls = 0;
    const err = await callAws(
      site,
      {},
      async () => {
        calls++;
        throw awsError('ThrottlingException', 400);
      },
      fast,
    ).catch((e) => e);
    expect(calls).toBe(5);
    expect(err.code).toBe('AWS_THROTTLED');
    expect(err.message).toContain('still throttled (ThrottlingException) after 5 attempts');
  });

  it('does not retry access denied, and stops retrying once the run is aborted', async () => {
    let calls = 0;
    await callAws(
      site,
      {},
      async () => {
        calls++;
        throw awsError('AccessDenied', 403);
      },
      fast,
    ).catch(() => undefined);
    expect(calls).toBe(1);

    const ctrl = new AbortController();
    calls = 0;
    const err = await callAws(
      site,
      { signal: ctrl.signal },
      async () => {
        calls++;
        ctrl.abort(new Error('operator interrupt'));
        throw awsError('Throttling', 400);
      },
      fast,
    ).catch((e) => e);
    expect(calls).toBe(1);
    expect(err.message).toBe('operator interrupt');
  });
});
