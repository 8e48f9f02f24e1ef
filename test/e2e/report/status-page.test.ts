// `--status-port` during a real sandbox rehearsal, watched from headless Chromium (Debian's, driven by
// playwright-core) through a TCP proxy the test can cut: the page sees the steps advance and the
// maintenance clock run, shows the connection lost while the proxy is down and catches up when it
// is back, and ends on the outcome. Everything the status server sent (page, /state, the raw SSE
// stream) is searched for the sandbox's secrets, and writes are refused with 405.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { get, request } from 'node:http';
import { createServer, type Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resetSandbox, type SandboxEnv } from '../../../src/sandbox/index.js';
import { REPO, startCli } from '../../helpers/cli.js';
import { sandboxEnv } from '../../setup/sandbox-env.js';
import {
  cliEnv,
  hooksDir,
  RUNBOOK,
  removeTemps,
  sandboxSteps,
  tempDir,
} from '../../integration/cutover/harness.js';
import { Journal } from '../../../src/journal/journal.js';
import { Redactor } from '../../../src/journal/redact.js';
import { CHROMIUM, CHROMIUM_ARGS } from '../../helpers/chromium.js';

const SKIP = !existsSync(CHROMIUM);
// CUTOVER_SCREENSHOTS=docs writes the README's screenshots; otherwise they go to a temp dir.
const SHOTS = process.env.CUTOVER_SCREENSHOTS === 'docs' ? join(REPO, 'docs') : tempDir('shots');

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A TCP proxy to the status server: drop() cuts every connection and refuses new ones until restore(). */
class CutProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  constructor(
    readonly port: number,
    private readonly target: number,
  ) {}
  async restore(): Promise<void> {
    this.server = createServer((c) => {
      const up = new Socket();
      up.connect(this.target, '127.0.0.1');
      for (const s of [c, up]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      c.pipe(up).pipe(c);
      c.on('close', () => up.destroy());
      up.on('close', () => c.destroy());
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', () => r()));
  }
  async drop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    for (const x of this.sockets) x.destroy();
    if (s) await new Promise((r) => s.close(r));
  }
}

function fetchText(url: string, method = 'GET'): Promise<{ status: number; body: string; allow?: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => {
        body += d;
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body,
          ...(res.headers.allow ? { allow: res.headers.allow } : {}),
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

interface Sample {
  at: number;
  clock: string;
  done: number;
  conn: string;
  outcome: string;
  current: string;
}

async function sample(p: Page): Promise<Sample> {
  // Runs in the page (no DOM types in this project's tsconfig).
  const doc = 'document' as const;
  return p.evaluate((d) => {
    const document = (
      globalThis as unknown as Record<
        string,
        {
          getElementById(id: string): { textContent: string | null; hidden?: boolean } | null;
          querySelectorAll(s: string): { length: number };
        }
      >
    )[d]!;
    return {
      at: Date.now(),
      clock: document.getElementById('clock')?.textContent ?? '',
      done: document.querySelectorAll('#steps tr.done').length,
      conn: document.getElementById('conn')?.textContent ?? '',
      outcome: document.getElementById('outcome-box')?.hidden
        ? ''
        : (document.getElementById('outcome')?.textContent ?? ''),
      current: document.getElementById('current')?.textContent ?? '',
    };
  }, doc);
}

async function until(p: Page, what: string, ok: (s: Sample) => boolean, timeoutMs: number, log: Sample[]) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = await sample(p);
    log.push(s);
    if (ok(s)) return s;
    if (Date.now() > end)
      throw new Error(`status page: ${what} not seen in ${timeoutMs} ms; last ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let env: SandboxEnv;
let browser: BrowserContext | undefined;

beforeAll(async () => {
  env = sandboxEnv();
  if (SKIP) return;
  await resetSandbox(env);
  browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'cutover-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1100, height: 1000 },
    args: [...CHROMIUM_ARGS],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await resetSandbox(env);
  removeTemps();
});

describe('status page during a sandbox rehearsal', () => {
  it.skipIf(SKIP)(
    'steps advance, the maintenance clock runs, a dropped connection comes back, the outcome shows; no secret, no write',
    async () => {
      const runsDir = tempDir('status-runs');
      // An earlier rehearsal in the runs dir: the page has a predicted end to show.
      const seed = join(runsDir, '20260101T000000Z-sandbox-cutover-seed');
      mkdirSync(seed);
      const j = Journal.open(seed, 'a'.repeat(64), new Redactor([]));
      j.append('step-start', {
        stepId: 'flip-dns',
        kind: 'aws.route53.flip',
        inputs: { zoneId: env.SANDBOX_ZONE_ID, name: env.SANDBOX_RECORD_NAME, type: 'CNAME' },
      });
      j.append('rehearsal', {
        result: {
          status: 'succeeded',
          stepDurationsMs: {
            ...Object.fromEntries(sandboxSteps().map((s) => [s.id, 900])),
            'flip-dns': 2900,
          },
          environmentMs: { 'flip-dns': { insync: 1000, ttl: 1000 } },
        },
      });
      j.close();
      const port = await freePort();
      const proxy = new CutProxy(await freePort(), port);
      await proxy.restore();
      // A short pause before each step, so a person (and this test) can watch them go by.
      const hooks = hooksDir({ 'before-step': 'sleep 0.6' });
      const run = startCli(
        [
          'rehearse',
          RUNBOOK,
          '--runs-dir',
          runsDir,
          '--plain',
          '--hooks-dir',
          hooks,
          '--status-port',
          String(port),
        ],
        { cwd: REPO, env: cliEnv(env), timeoutMs: 110_000 },
      );
      const base = `http://127.0.0.1:${port}/`;
      // The server is up once the CLI says so.
      for (let i = 0; !/status page: http/.test(run.stderr()); i++) {
        if (i > 300) throw new Error(`no status page announced:\n${run.stderr()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(run.stderr()).toMatch(
        new RegExp(`status page: http://127\\.0\\.0\\.1:${port}/ \\(read-only\\)`),
      );

      // The raw event stream, kept whole, to search for secrets afterwards.
      let stream = '';
      get(`${base}events`, (res) =>
        res.setEncoding('utf8').on('data', (d: string) => {
          stream += d;
        }),
      ).on('error', () => undefined);

      const page = await browser!.newPage();
      const output = () => `\n--- cutover stdout\n${run.stdout()}\n--- stderr\n${run.stderr()}`;
      try {
        const requests: string[] = [];
        page.on('request', (r) => requests.push(`${r.method()} ${r.url()}`));
        await page.goto(`http://127.0.0.1:${proxy.port}/`);
        const log: Sample[] = [];

        // Steps advance.
        const first = await until(
          page,
          'a finished step',
          (s) => s.done >= 1 && /live/.test(s.conn),
          60_000,
          log,
        );
        // The maintenance clock runs.
        const m1 = await until(
          page,
          'the maintenance clock',
          (s) => /^\d\d:\d\d\.\d$/.test(s.clock),
          60_000,
          log,
        );
        await new Promise((r) => setTimeout(r, 700));
        const m2 = await sample(page);
        expect(m2.clock > m1.clock, `${m1.clock} then ${m2.clock}`).toBe(true);
        await page.screenshot({ path: join(SHOTS, 'status-page-running.png'), fullPage: true });

        // The writes a browser could try are refused; the run goes on.
        for (const [method, path] of [
          ['POST', ''],
          ['PUT', 'state'],
          ['DELETE', 'events'],
          ['PATCH', ''],
        ] as const) {
          const r = await fetchText(`${base}${path}`, method);
          expect(r.status, `${method} /${path}`).toBe(405);
          expect(r.allow).toBe('GET, HEAD');
        }

        // The network between browser and server drops, then comes back.
        await proxy.drop();
        const lost = await until(
          page,
          'the connection marked lost',
          (s) => /connection lost/.test(s.conn),
          10_000,
          log,
        );
        await page.screenshot({ path: join(SHOTS, 'status-page-reconnecting.png'), fullPage: true });
        await new Promise((r) => setTimeout(r, 1500));
        await proxy.restore();
        const back = await until(
          page,
          'the connection back',
          (s) => /live|run ended/.test(s.conn),
          15_000,
          log,
        );
        expect(back.done).toBeGreaterThanOrEqual(lost.done);

        // The outcome.
        const end = await until(page, 'the outcome', (s) => s.outcome !== '', 90_000, log);
        expect(end.outcome).toMatch(/^succeeded \(exit 0\) — maintenance \d+\.\ds$/);
        await page.screenshot({ path: join(SHOTS, 'status-page-done.png'), fullPage: true });
        const steps = await page
          .locator('#steps tr')
          .evaluateAll((rows) =>
            rows.map((r) => [r.querySelector('.id')?.textContent, r.querySelector('.state')?.textContent]),
          );
        expect(steps.length).toBeGreaterThanOrEqual(8);
        expect(
          steps.every(([, state]) => state === 'done'),
          JSON.stringify(steps),
        ).toBe(true);
        // Done steps only ever grew across the samples: the page never went backwards after the drop.
        const dones = log.map((s) => s.done);
        expect(dones.every((d, i) => i === 0 || d >= dones[i - 1]!)).toBe(true);
        expect(first.done).toBeLessThan(steps.length);
        const timeline = await page.locator('#timeline li').allTextContents();
        expect(timeline.join('\n')).toMatch(/maintenance entered/);
        expect(timeline.join('\n')).toMatch(/point of no return passed at flip-dns/);

        // The page fetched only from its own server.
        expect(
          requests.every((r) => r.includes(`127.0.0.1:${proxy.port}/`)),
          requests.join('\n'),
        ).toBe(true);
      } catch (e) {
        throw new Error(`${(e as Error).message}${output()}`);
      }
      const result = await run.done;
      expect(result.code, result.stderr).toBe(0);
      // rehearse prints the window predicted from this rehearsal, split into what it is made of.
      console.log(result.stdout.slice(result.stdout.indexOf('\nRehearsal')));
      expect(result.stdout).toMatch(
        /Predicted window \(the runbook's own parameters: the environment rehearsed\) \(time in maintenance\): \S+/,
      );
      expect(result.stdout).toMatch(/flip-dns: Route 53 propagation \(INSYNC\)\s+\S+\s+measured/);
      const html = await page.content();
      for (const secret of [
        env.SANDBOX_DB_PASSWORD,
        env.SANDBOX_APP_DB_PASSWORD,
        env.SANDBOX_DB_REPL_PASSWORD,
        env.SANDBOX_APP_BYPASS_TOKEN,
      ].filter((s): s is string => !!s && s.length >= 6)) {
        expect(html.includes(secret), 'secret on the page').toBe(false);
        expect(stream.includes(secret), 'secret in the event stream').toBe(false);
      }
      expect(stream).toMatch(/event: state/);
      expect(stream).toMatch(/"status":"succeeded"/);
      await proxy.drop();
      await page.close();
      rmSync(runsDir, { recursive: true, force: true });
    },
    120_000,
  );
});
