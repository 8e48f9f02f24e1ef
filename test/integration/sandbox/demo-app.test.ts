import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ChangeResourceRecordSetsCommand, GetChangeCommand } from '@aws-sdk/client-route-53';
import { afterEach, describe, expect, it } from 'vitest';
import { getMaintenance, setInsyncDelay, setMaintenance } from '../../../src/sandbox/admin-client.js';
import { resetSandbox } from '../../../src/sandbox/index.js';
import { haproxy } from '../../../src/steps/proxy/haproxy.js';
import { sandboxEnv } from '../../setup/sandbox-env.js';
import { awsClients, get, upsertRecord, waitFor } from './helpers.js';

const env = sandboxEnv();
const web = env.SANDBOX_APP_URL;
const mobile = env.SANDBOX_APP_MOBILE_URL;

/** The operator command, run as a separate process the way a runbook step would. */
function appCtl(...args: string[]): string {
  const script = fileURLToPath(new URL('../../../src/sandbox/app-ctl.ts', import.meta.url));
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  return execFileSync(process.execPath, ['--import', tsx, script, ...args, '--dir', env.SANDBOX_DIR], {
    encoding: 'utf8',
  });
}

describe('sandbox demo app', () => {
  afterEach(() => resetSandbox(env));

  it('serves the web route and the mobile API from the database behind the DNS name', async () => {
    const page = await get(web);
    expect(page.status).toBe(200);
    expect(page.body).toContain('Enamel mug');
    expect(page.headers['x-served-by-db']).toBe(env.SANDBOX_OLD_DB_HOST);
    const api = await get(mobile);
    expect(api.status).toBe(200);
    const json = JSON.parse(api.body);
    expect(json.products.length).toBeGreaterThan(3);
    expect(json.servedBy.address).toBe(env.SANDBOX_OLD_DB_HOST);
    expect((await get(env.SANDBOX_APP_HEALTH_URL)).status).toBe(200);
  });

  it('maintenance scope all (over HTTP): both routes answer 503 "maintenance"', async () => {
    await setMaintenance(env, { enabled: true, scope: 'all' });
    const page = await get(web);
    expect(page.status).toBe(503);
    expect(page.body.toLowerCase()).toContain('maintenance');
    const api = await get(mobile);
    expect(api.status).toBe(503);
    expect(JSON.parse(api.body)).toMatchObject({ error: 'maintenance' });
    // Load-balancer health checks stay green.
    expect((await get(env.SANDBOX_APP_HEALTH_URL)).status).toBe(200);
    expect(JSON.parse(readFileSync(env.SANDBOX_MAINTENANCE_FILE, 'utf8'))).toEqual({
      enabled: true,
      scope: 'all',
    });
  });

  it('maintenance scope web (by command): the trap — the mobile API still serves', async () => {
    expect(JSON.parse(appCtl('maintenance', 'on', '--scope', 'web'))).toEqual({
      enabled: true,
      scope: 'web',
    });
    expect(await getMaintenance(env)).toEqual({ enabled: true, scope: 'web' });
    expect((await get(web)).status).toBe(503);
    expect((await get(mobile)).status).toBe(200);
    appCtl('maintenance', 'off');
    expect((await get(web)).status).toBe(200);
  });

  it('the bypass header and a client address inside the bypass CIDR reach the real app', async () => {
    await setMaintenance(env, { enabled: true, scope: 'all' });
    const header = { [env.SANDBOX_APP_BYPASS_HEADER]: env.SANDBOX_APP_BYPASS_TOKEN };
    for (const url of [web, mobile]) {
      const viaHeader = await get(url, { headers: header });
      expect(viaHeader.status).toBe(200);
      expect(viaHeader.headers['x-maintenance-bypass']).toBe('1');
      expect((await get(url, { localAddress: env.SANDBOX_APP_BYPASS_LOCAL_ADDRESS })).status).toBe(200);
      expect((await get(url, { headers: { [env.SANDBOX_APP_BYPASS_HEADER]: 'wrong-token' } })).status).toBe(
        503,
      );
      expect((await get(url, { localAddress: '127.0.0.20' })).status).toBe(503);
    }
  });

  it('after a DNS flip the app reconnects and serves from the new server', async () => {
    const { route53 } = awsClients(env);
    await setInsyncDelay(env, 200);
    const before = JSON.parse((await get(mobile)).body).servedBy;
    expect(before.address).toBe(env.SANDBOX_OLD_DB_HOST);
    const change = await route53.send(
      new ChangeResourceRecordSetsCommand(upsertRecord(env, env.SANDBOX_DB_NEW_NAME, 1)),
    );
    await waitFor(
      'INSYNC',
      async () =>
        (await route53.send(new GetChangeCommand({ Id: change.ChangeInfo!.Id! }))).ChangeInfo?.Status ===
        'INSYNC',
    );
    // The app honours the 1 s TTL of its cached answer, then moves.
    const after = await waitFor('the app on the new server', async () => {
      const s = JSON.parse((await get(mobile)).body).servedBy;
      return s.address === env.SANDBOX_NEW_DB_HOST ? s : undefined;
    });
    expect(after.serverId).not.toBe(before.serverId);
    expect((await get(web)).headers['x-served-by-db']).toBe(env.SANDBOX_NEW_DB_HOST);
  });

  it('app-ctl db proxy: the app reads through HAProxy, and follows it when the proxy moves to new', async () => {
    expect(appCtl('db', 'status').trim()).toBe('dns');
    expect(appCtl('db', 'proxy').trim()).toBe('proxy');
    const via = await waitFor('the app through the proxy', async () => {
      const s = JSON.parse((await get(mobile)).body).servedBy;
      return s.address === env.SANDBOX_PROXY_HOST ? s : undefined;
    });
    expect(via.serverId).toBe(1);
    const p = haproxy(env.SANDBOX_PROXY_SOCKET);
    await p.setState(env.SANDBOX_PROXY_BACKEND, env.SANDBOX_PROXY_OLD_SERVER, 'maint');
    await p.setState(env.SANDBOX_PROXY_BACKEND, env.SANDBOX_PROXY_NEW_SERVER, 'ready');
    await p.shutdownSessions(env.SANDBOX_PROXY_BACKEND, env.SANDBOX_PROXY_OLD_SERVER);
    // Same address, another server: the pooled connections were cut, the retry reconnects.
    const moved = await waitFor('the app on new through the proxy', async () => {
      const r = await get(mobile);
      const s = r.status === 200 ? JSON.parse(r.body).servedBy : undefined;
      return s?.serverId === 2 ? s : undefined;
    });
    expect(moved.address).toBe(env.SANDBOX_PROXY_HOST);
  });

  it('crontab files for two app hosts, one job with shell metacharacters', () => {
    const app1 = readFileSync(env.SANDBOX_CRONTAB_APP1, 'utf8');
    const app2 = readFileSync(env.SANDBOX_CRONTAB_APP2, 'utf8');
    expect(app1).toContain('--since "$(date +\\%F)" >> /var/log/sync.log 2>&1');
    const jobs = (t: string) => t.split('\n').filter((l) => /^[*0-9]/.test(l));
    expect(jobs(app1).length).toBeGreaterThanOrEqual(2);
    expect(jobs(app2).length).toBeGreaterThanOrEqual(2);
  });
});
