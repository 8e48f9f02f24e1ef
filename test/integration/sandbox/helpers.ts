// Real clients against the test sandbox: AWS SDK clients pointed at CUTOVER_AWS_ENDPOINT with the
// sandbox's dummy credentials, a DNS resolver, plain HTTP (mysql2 connections: ../mysql/harness.ts).
import { Resolver } from 'node:dns/promises';
import http from 'node:http';
import { EC2Client } from '@aws-sdk/client-ec2';
import { RDSClient } from '@aws-sdk/client-rds';
import { type ChangeResourceRecordSetsCommandInput, Route53Client } from '@aws-sdk/client-route-53';
import type { SandboxEnv } from '../../../src/sandbox/index.js';

export function awsClients(env: SandboxEnv) {
  const cfg = {
    endpoint: env.CUTOVER_AWS_ENDPOINT,
    region: env.AWS_REGION,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
    // One attempt: a test that injects a fault must see it, not the SDK's retry.
    maxAttempts: 1,
  };
  return { ec2: new EC2Client(cfg), route53: new Route53Client(cfg), rds: new RDSClient(cfg) };
}

/** The change the tests make to the database record: UPSERT its CNAME to value. */
export function upsertRecord(env: SandboxEnv, value: string, ttl = 1): ChangeResourceRecordSetsCommandInput {
  return {
    HostedZoneId: env.SANDBOX_ZONE_ID,
    ChangeBatch: {
      Changes: [
        {
          Action: 'UPSERT',
          ResourceRecordSet: {
            Name: env.SANDBOX_RECORD_NAME,
            Type: 'CNAME',
            TTL: ttl,
            ResourceRecords: [{ Value: value }],
          },
        },
      ],
    },
  };
}

export function resolver(env: SandboxEnv): Resolver {
  const r = new Resolver({ timeout: 1000, tries: 2 });
  r.setServers([`127.0.0.1:${env.SANDBOX_DNS_PORT}`]);
  return r;
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** node:http rather than fetch, so a test can bind the client address (bypass by CIDR). */
export function get(
  url: string,
  opts: { headers?: Record<string, string>; localAddress?: string } = {},
): Promise<HttpResult> {
  return new Promise((res, rej) => {
    const req = http.request(
      url,
      {
        method: 'GET',
        headers: opts.headers ?? {},
        ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
        agent: false,
      },
      (r) => {
        let body = '';
        r.setEncoding('utf8');
        r.on('data', (c: string) => {
          body += c;
        });
        r.on('end', () => res({ status: r.statusCode ?? 0, headers: r.headers, body }));
      },
    );
    req.on('error', rej);
    req.end();
  });
}

export async function waitFor<T>(
  what: string,
  f: () => Promise<T | undefined | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
