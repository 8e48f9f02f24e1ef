// `cutover report RUN_DIR --format html` opened in a real headless Chromium (Debian's package, driven
// by playwright-core: no browser download): the page shows who ran what and how it ended, the
// journal's integrity, one timeline bar per step, and makes no request besides its own file, even
// though the runbook's commands print HTML into the outputs the report displays.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Journal } from '../../../src/journal/journal.js';
import { Redactor } from '../../../src/journal/redact.js';
import { CHROMIUM, CHROMIUM_ARGS } from '../../helpers/chromium.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
// Developers without Chromium skip; CI installs it (.ci/run) and must never skip.
const SKIP = !existsSync(CHROMIUM) && !process.env.CI;
const WHY = SKIP ? ' [SKIPPED: /usr/bin/chromium is not installed — apt-get install -y chromium]' : '';
if (SKIP)
  console.warn(
    `html report tests skipped: ${CHROMIUM} is absent (apt-get install -y chromium); CI runs them`,
  );

// A payload that would fetch if the report did not escape it: the no-request check catches it.
const HOSTILE = `<img src="http://127.0.0.1:9/leak.png"><script>alert(1)</script>`;

const RUNBOOK_OK = `version: 1
name: report-ok
params:
  dir: FILES
steps:
  - id: prepare
    kind: shell.run
    with:
      command: mkdir -p \${params.dir} && printf 'host=old\\n' > \${params.dir}/db.conf && echo prepared
      undo: rm -rf \${params.dir}
  - id: flaky
    kind: shell.run
    retries: 1
    retryDelay: 300ms
    with:
      command: test -f \${params.dir}/tried || { touch \${params.dir}/tried; echo first attempt fails >&2; exit 1; }
  - id: flip
    kind: shell.run
    pointOfNoReturn: true
    after:
      - kind: wait
        with: { duration: 200ms }
    with:
      command: sed -i 's/old/new/' \${params.dir}/db.conf && cat \${params.dir}/db.conf
      undo: sed -i 's/new/old/' \${params.dir}/db.conf
  - id: announce
    kind: shell.run
    with:
      command: echo done
`;

const RUNBOOK_FAIL = `version: 1
name: report-rollback
params:
  dir: FILES
steps:
  - id: prepare
    kind: shell.run
    with:
      command: mkdir -p \${params.dir} && printf 'host=old\\n' > \${params.dir}/db.conf && echo prepared
      undo: rm -rf \${params.dir}
  - id: flip
    kind: shell.run
    with:
      command: sleep 0.2; sed -i 's/old/new/' \${params.dir}/db.conf && cat \${params.dir}/db.conf
      undo: sed -i 's/new/old/' \${params.dir}/db.conf
  - id: smoke
    kind: shell.run
    after:
      - kind: assert
        name: app answers from the new host
        with: { that: "1 == 2", message: "smoke test saw the old host" }
    with:
      command: |
        printf '%s\\n' '${HOSTILE}'
      # Printing changes nothing; without an undo the rollback would leave it for a human (issue 13).
      undo: echo nothing to put back
  - id: never-reached
    kind: shell.run
    with:
      command: echo unreachable
`;

const exec = promisify(execFile);
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CI: '1', NO_COLOR: '1' };
  delete env.CUTOVER_RUNS_DIR;
  return env;
}
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(process.execPath, [join(REPO, 'bin', 'cutover.js'), ...args], {
      env: childEnv(),
      timeout: 60_000,
    });
    return { code: 0, ...r };
  } catch (e) {
    const x = e as { code?: number; stdout: string; stderr: string };
    if (typeof x.code !== 'number') throw e;
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

/** Runs a runbook for real and returns its run directory (the one line naming it in the output). */
async function run(dir: string, name: string, yaml: string, expectCode: number): Promise<string> {
  const files = join(dir, `${name}-files`);
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, yaml.replaceAll('FILES', files));
  const runs = join(dir, 'runs');
  const r = await cli(['run', file, '--execute', '--yes', '--runs-dir', runs]);
  expect(r.code, r.stdout + r.stderr).toBe(expectCode);
  const runDir = /run dir (\S+?)(?:,|\s|$)/m.exec(r.stdout + r.stderr)?.[1];
  expect(runDir, r.stdout + r.stderr).toBeDefined();
  return runDir!;
}

async function render(runDir: string, out: string): Promise<string> {
  const r = await cli(['report', runDir, '--format', 'html', '-o', out]);
  expect(r.code, r.stderr).toBe(0);
  return out;
}

interface Opened {
  page: Page;
  url: string;
  requests: string[];
  dialogs: string[];
}

describe('cutover report --format html in headless Chromium', () => {
  let dir: string;
  let browser: BrowserContext;
  const opened: Page[] = [];
  let okRun: string;
  let failRun: string;

  async function open(file: string): Promise<Opened> {
    const page = await browser.newPage();
    opened.push(page);
    const o: Opened = { page, url: pathToFileURL(file).href, requests: [], dialogs: [] };
    page.on('request', (r) => o.requests.push(r.url()));
    page.on('dialog', (d) => {
      o.dialogs.push(d.message());
      void d.dismiss();
    });
    await page.setViewportSize({ width: 1200, height: 900 });
    await page.goto(o.url, { waitUntil: 'load' });
    return o;
  }

  // innerText, not textContent: what a reader sees (CSS case, table cells tab-separated). It is a
  // Playwright locator method here, not a DOM property.
  const text = (p: Page, sel: string) => p.locator(sel).innerText();
  const expandDetails = (p: Page, open: boolean) =>
    p.locator('#details details').evaluateAll((ds, open) => {
      for (const d of ds) open ? d.setAttribute('open', '') : d.removeAttribute('open');
    }, open);
  const attrs = (p: Page, sel: string, a: string) =>
    p.locator(sel).evaluateAll((els, a) => els.map((e) => e.getAttribute(a)), a);

  beforeAll(async () => {
    if (SKIP) return;
    if (!existsSync(join(REPO, 'dist', 'cli.js')))
      throw new Error('dist/cli.js is missing: run `npm run build` first');
    dir = mkdtempSync(join(tmpdir(), 'cutover-report-'));
    okRun = await run(dir, 'ok', RUNBOOK_OK, 0);
    failRun = await run(dir, 'fail', RUNBOOK_FAIL, 1);
    browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'cutover-chromium-')), {
      executablePath: CHROMIUM,
      headless: true,
      args: [...CHROMIUM_ARGS, '--disable-quic', '--disable-component-update', '--disable-sync'],
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(SKIP)(
    `a rolled-back run: header, integrity, one bar per step, undo bars, escaped outputs, no request${WHY}`,
    async () => {
      const o = await open(await render(failRun, join(dir, 'fail.html')));
      const p = o.page;
      const journal = readFileSync(join(failRun, 'journal.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const verify = JSON.parse((await cli(['log', 'verify', failRun, '--json'])).stdout) as {
        headHash: string;
        records: number;
      };

      expect(await p.title()).toContain('report-rollback');
      expect(await text(p, '#result')).toBe('ROLLED-BACK'); // uppercased by CSS; innerText reflects it
      const header = await text(p, 'header');
      expect(header).toContain(String(journal[0]!.runId));
      expect(header).toContain('exit status 1');
      expect(header).toContain('smoke test saw the old host');
      expect(await text(p, '#operator')).toBe(journal[0]!.by);
      const integrity = await text(p, '#integrity');
      expect(integrity).toContain(`hash chain intact — ${verify.records} records`);
      expect(integrity).toContain(verify.headHash);
      expect(await p.locator('header.hdr.warn').count()).toBe(1);

      // Timeline: one bar per step that ran, in runbook order, colored by how far it got; undo bars for the undone.
      expect(await attrs(p, '#timeline-svg rect.bar', 'data-step')).toEqual(['prepare', 'flip', 'smoke']);
      expect(await attrs(p, '#timeline-svg rect.bar', 'data-status')).toEqual(['done', 'done', 'failed']);
      // smoke's apply succeeded before its after check failed: the engine undoes it too.
      expect(await attrs(p, '#timeline-svg rect.undo', 'data-step')).toEqual(['prepare', 'flip', 'smoke']);
      expect(await text(p, '#timeline')).toContain('rollback started');
      expect(await text(p, '#timeline')).toContain('not run');

      const rows = await p.locator('#steps tbody tr').allInnerTexts();
      expect(rows.map((r) => r.split('\t').slice(1, 4))).toEqual([
        ['prepare', 'shell.run', 'undone'],
        ['flip', 'shell.run', 'undone'],
        ['smoke', 'shell.run', 'undone'],
        ['never-reached', 'shell.run', 'pending'],
      ]);
      expect(await text(p, '#attention')).toContain(
        'failed after check app answers from the new host of smoke',
      );

      // The command's HTML output is shown as text, never parsed: no script, no image, no dialog, no fetch.
      await expandDetails(p, true);
      expect(await text(p, '#details')).toContain(HOSTILE);
      expect(await p.locator('script, img').count()).toBe(0);
      expect(o.dialogs).toEqual([]);
      expect(o.requests).toEqual([o.url]);

      // The README's screenshot is of a rolled-back sandbox cutover: changes-report.test.ts.
      await p.screenshot({ path: '/tmp/cutover-report-rollback.png', fullPage: true });
    },
    60_000,
  );

  it.skipIf(SKIP)(
    `a succeeded run: retry wait, point of no return, outputs, no request${WHY}`,
    async () => {
      const o = await open(await render(okRun, join(dir, 'ok.html')));
      const p = o.page;
      expect(await text(p, '#result')).toBe('SUCCEEDED');
      expect(await p.locator('header.hdr.ok').count()).toBe(1);
      expect(await text(p, 'header')).toContain('exit status 0');
      expect(await attrs(p, '#timeline-svg rect.bar', 'data-step')).toEqual([
        'prepare',
        'flaky',
        'flip',
        'announce',
      ]);
      expect(await p.locator('#timeline-svg rect.undo').count()).toBe(0);
      expect(await p.locator('#timeline-svg rect.wait').count()).toBe(1);
      expect(await text(p, '#timeline')).toContain('point of no return (flip)');
      expect(await text(p, '#attention')).toMatch(
        /flaky attempt 1 failed, retried after 300ms: .*first attempt fails/,
      );
      await expandDetails(p, true);
      expect(await text(p, '#details')).toContain('host=new');
      expect(o.requests).toEqual([o.url]);
      await p.screenshot({ path: '/tmp/cutover-report-succeeded.png', fullPage: true });
    },
    60_000,
  );

  it.skipIf(SKIP)(
    `a tampered journal shows TAMPERED at the edited line, in red${WHY}`,
    async () => {
      const copy = join(dir, 'runs', 'tampered');
      mkdirSync(copy);
      const lines = readFileSync(join(failRun, 'journal.jsonl'), 'utf8').split('\n');
      const at = lines.findIndex((l) => l.includes('"type":"step-done"'));
      expect(lines[at]).toContain('"stdout":"prepared"');
      lines[at] = lines[at]!.replace('"stdout":"prepared"', '"stdout":"edited!!"');
      writeFileSync(join(copy, 'journal.jsonl'), lines.join('\n'));
      const o = await open(await render(copy, join(dir, 'tampered.html')));
      const integrity = o.page.locator('#integrity');
      expect(await text(o.page, '#integrity')).toContain(
        `TAMPERED at line ${at + 1}: content does not match its hash (edited)`,
      );
      // Runs in the page: no closure over test code.
      const color = await integrity.evaluate(
        (e) =>
          (globalThis as unknown as { getComputedStyle(x: unknown): { color: string } }).getComputedStyle(e)
            .color,
      );
      expect(color).toBe('rgb(198, 40, 40)');
      expect(o.requests).toEqual([o.url]);
      await o.page.screenshot({ path: '/tmp/cutover-report-tampered.png' });
    },
    60_000,
  );

  it.skipIf(SKIP)(
    `maintenance window over budget and a rehearsal's measurements${WHY}`,
    async () => {
      // No generic kind enters maintenance (the ops kinds do), and a rehearsal needs the sandbox: this
      // journal is written by the real journal writer with the records the engine and `cutover rehearse`
      // write for a window that overran its budget and was rolled back.
      const runDir = join(dir, 'runs', 'maintenance');
      mkdirSync(runDir);
      const j = Journal.open(runDir, 'f'.repeat(64), new Redactor());
      const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
      const steps = [
        { id: 'fence', kind: 'aws.security-group.restrict' },
        { id: 'maintenance-on', kind: 'ops.maintenance-on' },
        { id: 'flip-dns', kind: 'aws.route53.flip' },
      ];
      j.append('run-start', {
        runId: 'maint-run',
        mode: 'run',
        runbook: { file: '/rb.yaml', name: 'maint', sha256: 'f'.repeat(64) },
        vars: {},
        budgetMs: 400,
        steps,
      });
      j.append('step-start', { stepId: 'fence', kind: steps[0]!.kind, inputs: { groupId: 'sg-0abc' } });
      j.append('snapshot', {
        stepId: 'fence',
        snapshot: { groupId: 'sg-0abc', rules: ['tcp/3306 from 10.0.0.0/16'] },
      });
      await pause(100);
      j.append('step-done', { stepId: 'fence', outputs: { groupId: 'sg-0abc', rules: [] }, durationMs: 100 });
      j.append('step-start', { stepId: 'maintenance-on', kind: steps[1]!.kind, inputs: {} });
      j.append('snapshot', { stepId: 'maintenance-on', snapshot: { maintenance: false } });
      j.append('maintenance', { state: 'entered', budgetMs: 400 });
      await pause(50);
      j.append('step-done', { stepId: 'maintenance-on', outputs: { maintenance: true }, durationMs: 50 });
      j.append('step-start', {
        stepId: 'flip-dns',
        kind: steps[2]!.kind,
        inputs: { record: 'db.shop.internal' },
      });
      j.append('snapshot', {
        stepId: 'flip-dns',
        snapshot: { record: 'db.shop.internal', value: 'old.db', ttl: 1 },
      });
      await pause(450);
      j.append('step-failed', {
        stepId: 'flip-dns',
        error: { code: 'MAINTENANCE_BUDGET_EXCEEDED', message: 'maintenance budget of 400ms exceeded' },
        durationMs: 450,
      });
      j.append('rollback-start', { reason: 'budget', steps: ['flip-dns', 'maintenance-on', 'fence'] });
      for (const id of ['flip-dns', 'maintenance-on', 'fence']) {
        j.append('undo-start', { stepId: id });
        await pause(30);
        j.append('undo-done', { stepId: id, durationMs: 30 });
      }
      j.append('run-end', {
        status: 'rolled-back',
        exitCode: 1,
        message: 'maintenance budget of 400ms exceeded; rolled back',
        leftovers: [],
      });
      j.append('rehearsal', {
        result: {
          status: 'rolled-back',
          exitCode: 1,
          writeUnavailableMs: 812.5,
          maintenanceMs: 590,
          acknowledgedWrites: 1234,
          lostWrites: 0,
          stepDurationsMs: { fence: 100 },
          predictedWindowMs: 1000,
        },
        writers: 2,
        missing: [],
      });
      j.close();

      const o = await open(await render(runDir, join(dir, 'maintenance.html')));
      const p = o.page;
      expect(await p.locator('#timeline-svg rect.maintenance').count()).toBe(1);
      const timeline = await text(p, '#timeline');
      expect(timeline).toMatch(/budget 400ms EXCEEDED/);
      expect(timeline).toContain('(no exit recorded)');
      expect(await text(p, '.cards')).toContain('EXCEEDED');
      expect(await text(p, '#write-unavailability')).toContain('813ms');
      const reh = await text(p, '#rehearsal');
      expect(reh).toMatch(/acknowledged writes lost\s+0/);
      expect(reh).toMatch(/predicted window here \(high end\)\s+1\.0s/);
      expect(reh).toContain('fence 100ms');
      const changes = await text(p, '#changes');
      expect(changes).toContain('tcp/3306 from 10.0.0.0/16');
      expect(changes).toContain('old.db');
      expect(changes).toContain('undone: restored to the state before');
      expect(o.requests).toEqual([o.url]);
      await p.screenshot({ path: '/tmp/cutover-report-maintenance.png', fullPage: true });
    },
    60_000,
  );
});
