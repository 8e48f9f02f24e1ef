import { describe, expect, it } from 'vitest';
import type { ValidateContext } from '../../../src/engine/types.js';
import { redact, secretValues, urlHost } from '../../../src/steps/ops/common.js';
import { cronsDisable, cronsEnable } from '../../../src/steps/ops/crons.js';
import { eventMessage, hookEnv, renderWebhook } from '../../../src/steps/ops/lifecycle.js';
import {
  answerProblems,
  inMaintenance,
  maintenanceEnter,
  maintenanceExit,
  normalProblems,
} from '../../../src/steps/ops/maintenance.js';
import { notify, webhookBody } from '../../../src/steps/ops/notify.js';
import { opsKinds } from '../../../src/steps/ops/index.js';
import { compareResults, queryProblems, quoteTable, smokeTest } from '../../../src/steps/ops/smoke.js';
import { getKind } from '../../../src/steps/registry.js';

function validate(
  kind: { params: { parse(x: unknown): unknown }; validate?: (p: any, v: ValidateContext) => void },
  raw: unknown,
) {
  const issues: { path: string; message: string; severity: string }[] = [];
  kind.validate?.(kind.params.parse(raw), {
    pos: () => ({ file: 'x.yaml', line: 1, col: 1 }),
    issue: (path, message, severity = 'error') => issues.push({ path: path.join('.'), message, severity }),
    databases: new Set(),
    budgetMs: undefined,
  });
  return issues;
}
const errors = <T extends { severity: string }>(i: T[]) => i.filter((x) => x.severity === 'error');

const paths = [
  { name: 'web', url: 'http://app/', expect: { status: 503, bodyContains: 'maintenance' } },
  {
    name: 'mobile-api',
    url: 'http://app/api/mobile/products',
    expect: { status: 503, bodyContains: 'maintenance' },
  },
];

describe('ops kinds', () => {
  it('registers area.verb-noun kinds, maintenance flags for the budget clock', () => {
    expect(opsKinds.map((k) => k.kind).sort()).toEqual([
      'crons.disable',
      'crons.enable',
      'maintenance.enter',
      'maintenance.exit',
      'notify',
      'smoke.test',
    ]);
    expect(getKind('maintenance.enter')?.maintenance).toBe('enter');
    expect(getKind('maintenance.exit')?.maintenance).toBe('exit');
    expect(maintenanceEnter.shellFields).toContain('command');
  });

  it('crons: rejects host names that are shell syntax, bad timers and markers; needs a wait condition', () => {
    const issues = validate(cronsDisable, {
      hosts: ['app1', 'app2;touch /tmp/pwned', 'app1'],
      timers: ['sync', 'x;y'],
      marker: 'disabled',
      waitFor: { timeout: '1m' },
    });
    expect(
      errors(issues)
        .map((i) => i.path)
        .sort(),
    ).toEqual(['hosts', 'hosts.1', 'marker', 'timers.1', 'waitFor']);
    expect(
      errors(validate(cronsDisable, { hosts: ['local', 'deploy@app1'], files: ['/etc/cron.d/shop'] })),
    ).toEqual([]);
    expect(() => cronsEnable.params.parse({ waitFor: { lockFile: '/x', timeout: '1m' } })).toThrow();
  });

  it('crons: plans per host and target from the snapshot, sorted', () => {
    const p = cronsDisable.params.parse({
      hosts: ['app2', 'app1'],
      files: ['/etc/cron.d/shop'],
      timers: ['sync'],
    });
    const lines = cronsDisable.describe(p, {
      marker: '#cutover-disabled# ',
      hosts: [
        {
          host: 'app2',
          targets: [
            {
              target: { type: 'file', path: '/etc/cron.d/shop' },
              before: { exists: true, text: '0 * * * * a\n1 * * * * b\n' },
            },
          ],
          timers: [{ unit: 'sync.timer', state: 'active' }],
        },
        {
          host: 'app1',
          targets: [{ target: { type: 'file', path: '/etc/cron.d/shop' }, before: { exists: false } }],
          timers: [{ unit: 'sync.timer', state: 'inactive' }],
        },
      ],
    });
    expect(lines).toEqual([
      '/etc/cron.d/shop on app1 does not exist: nothing to disable',
      'sync.timer on app1 is already inactive',
      'would comment out 2 cron job(s) in /etc/cron.d/shop on app2',
      'would stop sync.timer on app2',
    ]);
    expect(cronsDisable.describe(cronsDisable.params.parse({}), undefined)).toEqual([
      'would comment out every cron job in the crontab on local',
    ]);
  });

  it('maintenance: judges maintenance and normal answers', () => {
    const m = { status: 503, body: '<h1>Down for maintenance</h1>', headers: {} };
    const ok = { status: 200, body: '<h1>shop</h1>', headers: { 'x-maintenance-bypass': '1' } };
    expect(inMaintenance(paths[0]!, m)).toBe(true);
    expect(inMaintenance(paths[0]!, ok)).toBe(false);
    expect(inMaintenance({}, { ...m, body: '' })).toBe(true); // default: status 503
    expect(normalProblems(paths[0]!, ok)).toEqual([]);
    expect(normalProblems(paths[0]!, m)).toEqual(['status 503: the maintenance answer']);
    expect(normalProblems({}, { status: 500, body: '', headers: {} })).toEqual(['status 500']);
    expect(
      answerProblems({ status: [200, 401], header: { name: 'X-Maintenance-Bypass', contains: '1' } }, ok),
    ).toEqual([]);
    expect(answerProblems({ bodyMatches: 'maint(enance)?', header: { name: 'retry-after' } }, ok)).toEqual([
      'body not matching /maint(enance)?/',
      'no retry-after header',
    ]);
  });

  it('maintenance: one switch, warns about a single client path, a missing bypass and a missing undo', () => {
    expect(errors(validate(maintenanceEnter, { paths }))).toHaveLength(1);
    expect(
      errors(validate(maintenanceEnter, { command: 'a', http: { url: 'http://x/' }, paths })),
    ).toHaveLength(1);
    const w = validate(maintenanceEnter, { command: 'app-ctl maintenance on', paths: [paths[0]] });
    expect(errors(w)).toEqual([]);
    const text = w.map((i) => i.message).join('\n');
    for (const re of [/only one client path/, /no undoCommand/, /no bypass/]) expect(text).toMatch(re);
    const b = validate(maintenanceEnter, {
      command: 'on',
      undoCommand: 'off',
      paths,
      bypass: { paths: ['admin'] },
      statusCommand: 'status',
    });
    expect(
      errors(b)
        .map((i) => i.path)
        .sort(),
    ).toEqual(['bypass', 'bypass.paths.0', 'statusMatches']);
    expect(validate(maintenanceExit, { command: 'off', undoCommand: 'on', paths: [paths[0]] })).toEqual([]);
  });

  it('maintenance: plans the switch, the paths, the bypass and the undo', () => {
    const p = maintenanceEnter.params.parse({
      command: 'app-ctl maintenance on',
      undoCommand: 'app-ctl maintenance off',
      paths,
      bypass: { header: { name: 'X-Bypass', value: { env: 'TOKEN' } }, localAddress: '127.0.0.9' },
    });
    const lines = maintenanceEnter.describe(p, { wasOn: false, from: 'paths', paths: [] });
    expect(lines).toEqual([
      'would switch maintenance on: run app-ctl maintenance on',
      'maintenance is off now (from the client paths)',
      'would check that web (http://app/), mobile-api (http://app/api/mobile/products) answer in maintenance',
      'would check that the bypass (header X-Bypass, source address 127.0.0.9) reaches the application',
      'undo would run app-ctl maintenance off',
    ]);
  });

  it('smoke: compares results, checks expectations, quotes tables, refuses writes in queries', () => {
    expect(compareResults([{ n: '10' }], [{ n: '10' }])).toBeUndefined();
    expect(compareResults([{ n: '10' }], [{ n: '12' }])).toBe('10 vs 12 (difference 2)');
    expect(compareResults([{ n: '10' }], [{ n: '12' }], 2)).toBeUndefined();
    expect(compareResults([{ a: 1, b: 'x' }], [{ a: 1, b: 'y' }])).toBe('the results differ');
    expect(compareResults([{ a: 1 }, { a: 2 }], [{ a: 1 }])).toBe('2 rows vs 1 rows');
    expect(queryProblems([{ n: '5' }], { equals: 5, min: 1, max: 4 })).toEqual(['value "5", expected ≤ 4']);
    expect(queryProblems([], { rows: 1 })).toEqual(['0 rows, expected 1']);
    expect(quoteTable('shop.cutover_smoke_canary')).toBe('`shop`.`cutover_smoke_canary`');
    expect(() => smokeTest.params.parse({ canary: { on: 'app', table: 'x`; DROP TABLE y' } })).toThrow();
    const issues = validate(smokeTest, {
      queries: [{ on: 'new', sql: 'DELETE FROM orders' }],
      compare: [{ on: ['old', 'old'], sql: 'SELECT 1', table: 'orders' }],
    });
    expect(
      errors(issues)
        .map((i) => i.path)
        .sort(),
    ).toEqual(['compare.0', 'compare.0.on', 'queries.0.sql']);
    expect(errors(validate(smokeTest, {}))).toHaveLength(1);
    expect(
      smokeTest.databases!(
        smokeTest.params.parse({
          canary: { on: 'app', readOn: 'new', mustReach: 'new' },
          compare: [{ on: ['old', 'new'], table: 'orders' }],
        }),
      ),
    ).toEqual(['app', 'new', 'new', 'old', 'new']);
  });

  it('notify: Slack or JSON bodies; the URL is a secret, only its host is shown', () => {
    expect(JSON.parse(webhookBody('slack', 'hi'))).toEqual({ text: 'hi' });
    expect(JSON.parse(webhookBody('json', 'hi', { runId: 'r1' }))).toEqual({ text: 'hi', runId: 'r1' });
    expect(urlHost('https://hooks.slack.com/services/T000/B000/XXXX')).toBe('https://hooks.slack.com');
    const p = notify.params.parse({
      webhook: 'https://hooks.slack.com/services/T000/B000/XXXX',
      message: 'entering maintenance',
    });
    expect(notify.describe(p, undefined)).toEqual([
      'would post to webhook https://hooks.slack.com: "entering maintenance"',
    ]);
    expect(
      validate(notify, { webhook: 'https://hooks.slack.com/services/T/B/X', message: 'm' })[0]?.severity,
    ).toBe('warning');
    expect(errors(validate(notify, { webhook: 'not a url', message: 'm' }))).toHaveLength(1);
    expect(validate(notify, { webhook: { env: 'SLACK_WEBHOOK' }, message: 'm' })).toEqual([]);
  });

  it('lifecycle: hook variables, messages without secrets, webhook templating', () => {
    expect(
      hookEnv(
        'before-step',
        {
          runId: 'r1',
          runDir: '/runs/r1',
          dryRun: true,
          stepId: 'fence',
          kind: 'aws.security-group.restrict',
        },
        'shop',
      ),
    ).toEqual({
      CUTOVER_EVENT: 'before-step',
      CUTOVER_HOOK: 'cutover-on-before-step',
      CUTOVER_RUNBOOK: 'shop',
      CUTOVER_RUN_ID: 'r1',
      CUTOVER_RUN_DIR: '/runs/r1',
      CUTOVER_DRY_RUN: '1',
      CUTOVER_STEP_ID: 'fence',
      CUTOVER_STEP_KIND: 'aws.security-group.restrict',
    });
    const env = { OLD_DB_PASSWORD: 's3cr3t-pw', HOME: '/home/x', SHORT_TOKEN: 'ab' };
    expect(secretValues(env)).toEqual(['s3cr3t-pw']);
    const msg = eventMessage(
      'failure',
      {
        runId: 'r1',
        runDir: '/r',
        dryRun: false,
        stepId: 'drain',
        error: { code: 'DB_ACCESS_DENIED', message: 'password s3cr3t-pw rejected' },
      },
      'shop',
    );
    expect(redact(msg, secretValues(env))).toBe(
      'cutover shop: step drain failed: DB_ACCESS_DENIED: password *** rejected (run r1)',
    );
    expect(renderWebhook('${env.HOOK}', { HOOK: 'http://h/x' })).toEqual({ url: 'http://h/x' });
    expect(renderWebhook('${env.NOPE}', {}).problem).toMatch(/NOPE is not set/);
    expect(renderWebhook('${params.x}', {}).problem).toMatch(/only \$\{env.NAME\}/);
  });
});
