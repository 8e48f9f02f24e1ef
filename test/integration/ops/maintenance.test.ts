// maintenance.enter / exit against the sandbox's demo app: the web route and the mobile API, a
// maintenance switch that can (the field report's trap) cover only the web route, and a bypass by
// header token or by source address inside the bypass CIDR.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { getMaintenance, setMaintenance } from '../../../src/sandbox/admin-client.js';
import { resetSandbox } from '../../../src/sandbox/index.js';
import { maintenanceShellCommand } from '../../../src/sandbox/maintenance.js';
import { maintenanceEnter, maintenanceExit } from '../../../src/steps/ops/maintenance.js';
import { sandboxEnv } from '../../setup/sandbox-env.js';
import { codeOf, createHarness, type Harness, messageOf, runStep, undoStep } from './harness.js';

const env = sandboxEnv();
const admin = `${env.SANDBOX_APP_ADMIN_URL}/maintenance`;
const paths = [
  { name: 'web', url: env.SANDBOX_APP_URL, expect: { status: 503, bodyContains: 'maintenance' } },
  {
    name: 'mobile-api',
    url: env.SANDBOX_APP_MOBILE_URL,
    expect: { status: 503, bodyContains: 'maintenance' },
  },
];
const bypass = {
  header: { name: env.SANDBOX_APP_BYPASS_HEADER!, value: { env: 'SANDBOX_APP_BYPASS_TOKEN' } },
  localAddress: env.SANDBOX_APP_BYPASS_LOCAL_ADDRESS!,
};
const on = (scope: 'all' | 'web') =>
  maintenanceShellCommand(env.SANDBOX_MAINTENANCE_FILE!, { enabled: true, scope });
const off = maintenanceShellCommand(env.SANDBOX_MAINTENANCE_FILE!, { enabled: false, scope: 'all' });

async function status(url: string, init: RequestInit = {}): Promise<number> {
  return (await fetch(url, init)).status;
}

async function servingNormally(): Promise<void> {
  expect((await getMaintenance(env)).enabled).toBe(false);
  expect(await status(env.SANDBOX_APP_URL)).toBe(200);
  expect(await status(env.SANDBOX_APP_MOBILE_URL)).toBe(200);
}

let h: Harness;
beforeAll(async () => {
  await setMaintenance(env, { enabled: false, scope: 'all' });
});
afterEach(async () => {
  await h?.close();
  await setMaintenance(env, { enabled: false, scope: 'all' });
});
afterAll(async () => {
  await resetSandbox(env);
});

describe('maintenance.enter against the demo app', () => {
  it('fails naming mobile-api when maintenance covers only the web route; undo leaves the app serving normally', async () => {
    h = createHarness({ mode: 'live', env });
    const step = await runStep(h, maintenanceEnter, {
      http: { url: admin, body: { enabled: true, scope: 'web' } },
      undoHttp: { url: admin, body: { enabled: false } },
      paths,
      bypass,
      timeout: '1s',
    });
    expect(step.snapshot).toMatchObject({ wasOn: false, from: 'paths' });
    expect(codeOf(step.error)).toBe('MAINTENANCE_NOT_COVERED');
    expect(messageOf(step.error)).toMatch(
      /^maintenance does not cover mobile-api after 1\.0s: mobile-api \(http:\S+\/api\/mobile\/products: status 200, expected 503, body without "maintenance"\)/,
    );
    expect(messageOf(step.error)).not.toMatch(/cover web/);
    // The web route really is in maintenance: only the mobile apps slip through.
    expect(await getMaintenance(env)).toEqual({ enabled: true, scope: 'web' });
    expect(await status(env.SANDBOX_APP_URL)).toBe(503);

    await undoStep(h, maintenanceEnter, step);
    await servingNormally();
    // Safe twice.
    await undoStep(h, maintenanceEnter, step);
    await servingNormally();
  });

  it('passes when maintenance covers both routes and the bypass (header and source address) reaches the app; undo leaves it normal', async () => {
    h = createHarness({ mode: 'live', env });
    const step = await runStep(h, maintenanceEnter, {
      command: on('all'),
      undoCommand: off,
      paths,
      bypass,
      timeout: '5s',
    });
    expect(step.error).toBeUndefined();
    const out = step.outputs as {
      paths: { name: string; status: number }[];
      bypass: { name: string; via: string; status: number }[];
    };
    expect(out.paths.map((x) => [x.name, x.status])).toEqual([
      ['web', 503],
      ['mobile-api', 503],
    ]);
    expect(out.bypass.map((x) => `${x.name} via ${x.via}: ${x.status}`).sort()).toEqual([
      `mobile-api via header ${env.SANDBOX_APP_BYPASS_HEADER}: 200`,
      `mobile-api via source address ${env.SANDBOX_APP_BYPASS_LOCAL_ADDRESS}: 200`,
      `web via header ${env.SANDBOX_APP_BYPASS_HEADER}: 200`,
      `web via source address ${env.SANDBOX_APP_BYPASS_LOCAL_ADDRESS}: 200`,
    ]);
    // The token is never in what gets journaled.
    expect(JSON.stringify(step)).not.toContain(env.SANDBOX_APP_BYPASS_TOKEN);
    expect(await getMaintenance(env)).toEqual({ enabled: true, scope: 'all' });

    await undoStep(h, maintenanceEnter, step);
    await servingNormally();
  });

  it('fails when the bypass does not really reach the app: a wrong token, or a source address outside the CIDR', async () => {
    h = createHarness({ mode: 'live', env: { ...env, WRONG_TOKEN: 'not-the-token' } });
    const wrongToken = await runStep(h, maintenanceEnter, {
      command: on('all'),
      undoCommand: off,
      paths,
      bypass: { header: { name: env.SANDBOX_APP_BYPASS_HEADER, value: { env: 'WRONG_TOKEN' } } },
      timeout: '1s',
    });
    expect(codeOf(wrongToken.error)).toBe('MAINTENANCE_BYPASS_FAILED');
    expect(messageOf(wrongToken.error)).toMatch(
      /bypass does not reach the application after 1\.0s: web via header X-Cutover-Bypass \(\S+: status 503: the maintenance answer\); mobile-api via header/,
    );
    await undoStep(h, maintenanceEnter, wrongToken);
    await servingNormally();

    const outside = await runStep(h, maintenanceEnter, {
      command: on('all'),
      undoCommand: off,
      paths,
      bypass: { localAddress: '127.0.0.20', paths: ['mobile-api'] },
      timeout: '1s',
    });
    expect(codeOf(outside.error)).toBe('MAINTENANCE_BYPASS_FAILED');
    expect(messageOf(outside.error)).toMatch(/mobile-api via source address 127\.0\.0\.20/);
    await undoStep(h, maintenanceEnter, outside);
    await servingNormally();
  });

  it('reads the previous state from a status endpoint; undo leaves maintenance on when it was on before', async () => {
    await setMaintenance(env, { enabled: true, scope: 'all' });
    h = createHarness({ mode: 'live', env });
    const step = await runStep(h, maintenanceEnter, {
      command: on('all'),
      undoCommand: off,
      statusHttp: { url: admin },
      statusMatches: '"enabled":\\s*true',
      paths,
      bypass,
    });
    expect(step.error).toBeUndefined();
    expect(step.snapshot).toMatchObject({
      wasOn: true,
      from: 'status',
      status: '{"enabled":true,"scope":"all"}',
    });
    await undoStep(h, maintenanceEnter, step);
    expect(await getMaintenance(env)).toEqual({ enabled: true, scope: 'all' });
    expect(h.logs.at(-1)).toMatch(/already on before the step: left on/);
  });

  it('dry run: records the switch, changes nothing', async () => {
    h = createHarness({ mode: 'dry', env });
    const step = await runStep(h, maintenanceEnter, {
      http: { url: admin, body: { enabled: true } },
      undoCommand: off,
      paths,
      bypass,
    });
    expect(step.error).toBeUndefined();
    expect(h.planLines()).toEqual([`would post ${admin} (switching maintenance on)`]);
    await servingNormally();
  });
});

describe('maintenance.exit against the demo app', () => {
  it('verifies every path serves normally again; undo puts maintenance back on, verified', async () => {
    await setMaintenance(env, { enabled: true, scope: 'all' });
    h = createHarness({ mode: 'live', env });
    const step = await runStep(h, maintenanceExit, {
      command: off,
      undoCommand: on('all'),
      paths,
      timeout: '5s',
    });
    expect(step.error).toBeUndefined();
    expect(step.snapshot).toMatchObject({ wasOn: true });
    expect((step.outputs as { paths: { status: number }[] }).paths.map((x) => x.status)).toEqual([200, 200]);
    await servingNormally();
    await undoStep(h, maintenanceExit, step);
    expect(await getMaintenance(env)).toEqual({ enabled: true, scope: 'all' });
    expect(await status(env.SANDBOX_APP_MOBILE_URL)).toBe(503);
  });

  it('fails naming the path still in maintenance', async () => {
    await setMaintenance(env, { enabled: true, scope: 'all' });
    h = createHarness({ mode: 'live', env });
    // "exit" that only lifts the web route: the mobile API stays down.
    const step = await runStep(h, maintenanceExit, { command: 'true', paths, timeout: '1s' });
    expect(codeOf(step.error)).toBe('MAINTENANCE_STILL_ON');
    expect(messageOf(step.error)).toMatch(/^web, mobile-api still not serving normally after 1\.0s/);
  });
});
