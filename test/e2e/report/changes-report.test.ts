// The HTML report of a ROLLED-BACK cutover of the sandbox (runbooks/sandbox.yaml with one step made
// to fail after the point of no return, rolling back on its own), opened in headless Chromium (Debian's
// package, driven by playwright-core). A reviewer must find, as visible text: each changed resource's
// before and after (the security-group rule removed, the DNS record's value and TTL, replication and
// read_only per server, the crontab lines commented out, maintenance on/off) and that each was
// restored; who approved the gate, how and when; clock times, not only offsets; and time in
// maintenance and write-unavailability labelled apart. The page is what docs/img/report-rolled-back.png shows.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, REPO, runCli } from '../../helpers/cli.js';
import { readJournalLines } from '../../helpers/workspace.js';
import { sandboxEnv } from '../../setup/sandbox-env.js';
import { CHROMIUM, CHROMIUM_ARGS } from '../../helpers/chromium.js';

// Developers without Chromium skip; CI installs it (.ci/run) and must never skip.
const SKIP = !existsSync(CHROMIUM) && !process.env.CI;
const WHY = SKIP ? ' [SKIPPED: /usr/bin/chromium is not installed — apt-get install -y chromium]' : '';
// The report's "local" clock is the renderer's zone: one far from UTC, so the two cannot coincide.
const ZONE = 'Asia/Kolkata';
const SHOT = join(REPO, 'docs', 'img', 'report-rolled-back.png');

/** runbooks/sandbox.yaml, made to fail after the flip and roll back on its own; the TTL changes too. */
function failingRunbook(): string {
  let y = readFileSync(join(REPO, 'runbooks', 'sandbox.yaml'), 'utf8');
  const edit = (from: string | RegExp, to: string) => {
    const next = y.replace(from, to);
    if (next === y) throw new Error(`runbooks/sandbox.yaml changed: ${String(from)} not found`);
    y = next;
  };
  // The sandbox's env comes from the process (it wins over env files): no developer file is read.
  edit(/^envFiles: .*$/m, '');
  edit('defaults: { timeout: 2m }', 'defaults: { timeout: 2m }\nrollback: { afterPointOfNoReturn: auto }');
  edit(/(kind: aws\.route53\.flip[\s\S]*?)ttl: 1\n/, '$1ttl: 2\n');
  edit(
    '  - id: smoke\n',
    `  - id: check-orders
    name: Orders page served by new (fails on purpose)
    kind: assert
    with: { that: "1 == 2", message: "orders page still served by old" }

  - id: smoke
`,
  );
  return y;
}

describe('the HTML report of a rolled-back sandbox cutover, in headless Chromium', () => {
  let dir: string;
  let runDir: string;
  let runOut: string;
  let browser: Browser;
  let page: Page;
  let journal: Record<string, unknown>[];
  const env = () => sandboxEnv() as unknown as Record<string, string>;
  const text = (sel: string) => page.locator(sel).innerText();

  beforeAll(async () => {
    if (SKIP) return;
    assertBuilt();
    dir = mkdtempSync(join(tmpdir(), 'cutover-changes-report-'));
    const file = join(dir, 'sandbox-fails.yaml');
    writeFileSync(file, failingRunbook());
    const runs = join(dir, 'runs');
    const r = await runCli(['run', file, '--execute', '--yes', '--runs-dir', runs], {
      env: env(),
      timeoutMs: 120_000,
    });
    runOut = r.stdout + r.stderr;
    expect(r.code, runOut).toBe(1);
    expect(runOut).toMatch(/rolled-back \(exit 1\)/);
    // The end of the run says where it is and how to find it again without its id.
    const last = /run dir (\S+) — see it again: cutover status --last --runs-dir (\S+)/.exec(runOut);
    expect(last, runOut).not.toBeNull();
    runDir = last![1]!;
    expect(last![2]).toBe(runs);
    journal = readJournalLines(runDir) as unknown as Record<string, unknown>[];

    const st = await runCli(['status', '--last', '--runs-dir', runs]);
    expect(st.code, st.stderr).toBe(0);
    expect(st.stdout).toContain(String(journal[0]!.runId));
    expect(st.stdout).toMatch(/rolled-back/);

    const html = join(dir, 'report.html');
    const rep = await runCli(['report', '--last', '--runs-dir', runs, '--format', 'html', '-o', html], {
      env: { TZ: ZONE },
    });
    expect(rep.code, rep.stderr).toBe(0);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [...CHROMIUM_ARGS],
    });
    page = await browser.newPage();
    await page.setViewportSize({ width: 1200, height: 900 });
    await page.goto(pathToFileURL(html).href, { waitUntil: 'load' });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The before / after / now cells of the resource whose heading starts with `name`. */
  async function resource(name: string): Promise<{ before: string; after: string; now: string }> {
    const block = page.locator('#changes .res').filter({ has: page.locator('h3', { hasText: name }) });
    expect(await block.count(), `one block for ${name}`).toBe(1);
    const cells = await block.locator('table.diff tbody td').allInnerTexts();
    expect(cells).toHaveLength(3);
    return { before: cells[0]!, after: cells[1]!, now: cells[2]! };
  }
  const undoneAt = (stepId: string) =>
    String(journal.find((r) => r.type === 'undo-done' && r.stepId === stepId)!.ts);

  it.skipIf(SKIP)(
    `each changed resource: before, after, and restored, as text${WHY}`,
    async () => {
      expect(await text('#result')).toBe('ROLLED-BACK');
      const e = env();

      // Security group: the app servers' rule was removed by the fence and put back by its undo.
      const sg = await resource(`security group ${e.SANDBOX_SECURITY_GROUP_ID} tcp/3306`);
      expect(sg.before).toContain('tcp/3306 from 127.0.0.0/24 (app servers)');
      expect(sg.before).toContain('tcp/3306 from 10.0.9.0/24 (admin VPN)');
      expect(sg.after).not.toContain('127.0.0.0/24');
      expect(sg.after).toContain('tcp/3306 from 10.0.9.0/24 (admin VPN)');
      expect(sg.now).toContain(`restored to before at ${undoneAt('fence-old')}`);
      expect(await text('#changes')).toContain('removed: tcp/3306 from 127.0.0.0/24 (app servers)');

      // The DNS record: value and TTL before → after → restored.
      const dns = await resource(`DNS record ${e.SANDBOX_RECORD_NAME} CNAME`);
      expect(dns.before).toContain(`${e.SANDBOX_DB_OLD_NAME} TTL 1`);
      expect(dns.after).toContain(`${e.SANDBOX_DB_NEW_NAME} TTL 2`);
      expect(dns.now).toContain(`restored to before at ${undoneAt('flip-dns')}`);

      // Replication and read_only, per server.
      const newServer = await resource('server new (replica)');
      expect(newServer.before).toContain('replication from old: IO thread running, SQL thread running');
      expect(newServer.before).toContain('read_only ON');
      expect(newServer.after).toMatch(/replication stopped at GTID \d+-\d+-\d+/);
      expect(newServer.after).toContain('read_only OFF');
      expect(newServer.now).toContain('restored to before');
      const oldServer = await resource('server old (source)');
      expect(oldServer.before).toContain('read_only OFF');
      expect(oldServer.after).toContain('read_only ON (frozen)');
      const reverse = await resource('server old (replica of new)');
      expect(reverse.before).toContain('no replication configured');
      expect(reverse.after).toMatch(
        /replication from new \(127\.0\.0\.3:\d+\) as repl: IO and SQL threads running/,
      );
      expect(reverse.now).toContain(`restored to before at ${undoneAt('reverse-replication')}`);

      // Crontab: each job line, commented out, then put back (the file holds it again).
      const crontab = readFileSync(e.SANDBOX_CRONTAB_APP1!, 'utf8');
      const job = crontab.split('\n').find((l) => l.includes('send-queued-emails'))!;
      expect(job).toBeDefined();
      const cron = await resource(`crontab ${e.SANDBOX_CRONTAB_APP1}`);
      expect(cron.before).toContain(job);
      expect(cron.after).toContain(`#cutover-disabled# ${job}`);
      expect(cron.now).toContain(`restored to before at ${undoneAt('disable-crons')}`);
      expect(crontab).not.toContain('#cutover-disabled#');

      const maint = await resource('maintenance mode');
      expect(maint.before.split('\n')[0]).toMatch(/off$/);
      expect(maint.after.split('\n')[0]).toMatch(/on$/);
      expect(maint.after).toContain('web: HTTP 503');
      expect(maint.now).toContain('restored to before');
    },
    60_000,
  );

  it.skipIf(SKIP)(
    `who approved the gate, how and when; clock times in UTC and local; the two durations apart${WHY}`,
    async () => {
      const gate = journal.find((r) => r.type === 'gate')!;
      expect(gate).toMatchObject({ stepId: 'enter-maintenance', decision: 'approved', via: '--yes' });
      const row = await page.locator('#approvals tbody tr[data-step="enter-maintenance"]').innerText();
      expect(row).toContain('approved');
      expect(row).toContain(String(gate.by)); // the OS account@host that ran it
      expect(row).toContain('pre-approved with --yes');
      expect(row).toContain(String(gate.ts));

      // Clock times: the ISO UTC time and the same moment in the renderer's zone.
      const started = String(journal[0]!.ts);
      const local = new Intl.DateTimeFormat('en-GB', {
        timeZone: ZONE,
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
        hour12: false,
      }).format(new Date(started));
      const s = await text('#started');
      expect(s).toContain(started);
      expect(s).toContain(local);
      // As ICU names it (Asia/Kolkata may read Asia/Calcutta).
      expect(s).toContain(new Intl.DateTimeFormat('en', { timeZone: ZONE }).resolvedOptions().timeZone);
      // Each step's row has its clock time, not only its offset.
      const flip = (await page.locator('#steps tbody tr').allInnerTexts()).find((r) =>
        r.includes('flip-dns'),
      )!;
      const flipStart = String(journal.find((r) => r.type === 'step-start' && r.stepId === 'flip-dns')!.ts);
      expect(flip).toContain(flipStart.slice(11));

      // The timeline's markers carry the clock too.
      const rb = String(journal.find((r) => r.type === 'rollback-start')!.ts);
      expect(await text('#timeline')).toContain(`rollback started at ${rb.slice(11)}`);

      // Time in maintenance and write-unavailability cannot be confused.
      const m = await text('#time-in-maintenance');
      expect(m).toMatch(/time in maintenance/i);
      expect(m).toMatch(/maintenance page/);
      const w = await text('#write-unavailability');
      expect(w).toMatch(/write-unavailability/i);
      expect(w).toMatch(/not measured/i);
      expect(w).toContain('time in maintenance is not it');

      // The rolled-back report for the README: header, cards, timeline, what changed, approvals.
      await page.screenshot({ path: '/tmp/cutover-report-rolled-back.png', fullPage: true });
      if (process.env.UPDATE_REPORT_EXAMPLE) {
        const box = await page.locator('#approvals').boundingBox();
        mkdirSync(join(REPO, 'docs', 'img'), { recursive: true });
        await page.screenshot({
          path: SHOT,
          fullPage: true,
          clip: { x: 0, y: 0, width: 1200, height: Math.ceil(box!.y + box!.height + 16) },
        });
      }
    },
    60_000,
  );
});
