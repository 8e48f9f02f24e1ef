import { describe, expect, it } from 'vitest';
import { type AdapterEnv, newStats } from '../../../src/adapters/adapters.js';
import { clientConfig } from '../../../src/adapters/aws.js';
import { serverAddresses, splitServer } from '../../../src/adapters/dns.js';

function env(vars: Record<string, string>, aws: AdapterEnv['aws'] = {}): AdapterEnv {
  return {
    mode: 'live',
    env: vars,
    cwd: '/',
    aws,
    stats: newStats(),
    database: () => {
      throw new Error('none');
    },
    record: () => undefined,
    countRead: () => undefined,
    countWrite: () => undefined,
  };
}

describe('AWS client settings', () => {
  it('signs Route 53 for us-east-1 (a global service) unless an endpoint is set', () => {
    expect(clientConfig(env({ AWS_REGION: 'eu-west-1' }), 'route53').region).toBe('us-east-1');
    expect(clientConfig(env({ AWS_REGION: 'eu-west-1' }), 'ec2').region).toBe('eu-west-1');
    expect(
      clientConfig(env({ AWS_REGION: 'eu-west-1' }, { endpoint: 'http://127.0.0.1:4566' }), 'route53'),
    ).toMatchObject({
      region: 'eu-west-1',
      endpoint: 'http://127.0.0.1:4566',
    });
    expect(clientConfig(env({}, { region: 'eu-central-1' }), 'rds', 'ap-south-1').region).toBe('ap-south-1');
  });

  it('uses the profile chain when a profile is named, env-file keys otherwise, and leaves SDK retries to us', () => {
    const withProfile = clientConfig(
      env({ AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's' }, { profile: 'prod-sso' }),
      'ec2',
    );
    expect(withProfile.profile).toBe('prod-sso');
    expect(withProfile.credentials).toBeUndefined();
    const keys = clientConfig(
      env({ AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's', AWS_SESSION_TOKEN: 't' }),
      'ec2',
    );
    expect(keys.credentials).toEqual({ accessKeyId: 'k', secretAccessKey: 's', sessionToken: 't' });
    expect(clientConfig(env({ AWS_PROFILE: 'dev' }), 'ec2').profile).toBe('dev');
    expect(keys.maxAttempts).toBe(1);
  });
});

describe('DNS servers', () => {
  it('splits host:port forms and keeps IP literals', async () => {
    expect(splitServer('127.0.0.1:10053')).toEqual({ host: '127.0.0.1', port: '10053' });
    expect(splitServer('[::1]:53')).toEqual({ host: '::1', port: '53' });
    expect(splitServer('10.0.0.2')).toEqual({ host: '10.0.0.2' });
    expect(await serverAddresses(['127.0.0.1:10053', '10.0.0.2'])).toEqual(['127.0.0.1:10053', '10.0.0.2']);
    expect(await serverAddresses(['localhost:53'])).toContain('127.0.0.1:53');
  });
});
