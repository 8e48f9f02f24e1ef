// The status server on its own: read-only (405 for anything but GET/HEAD), the whole state in the
// first SSE frame of every connection (a browser that reconnects is whole again), loopback only.
import { get, request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../../src/engine/events.js';
import { StatusServer } from '../../../src/report/status-page.js';

let server: StatusServer | undefined;
afterEach(async () => {
  await server?.close(0);
  server = undefined;
});

function call(
  url: string,
  method: string,
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The first SSE frame of a new connection, parsed. */
function firstFrame(url: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = get(`${url}events`, (res) => {
      let buf = '';
      res.setEncoding('utf8').on('data', (d: string) => {
        buf += d;
        const m = /event: state\ndata: (.*)\n\n/.exec(buf);
        if (m) {
          req.destroy();
          resolve(JSON.parse(m[1]!) as Record<string, unknown>);
        }
      });
    });
    req.on('error', (e) => (e.message.includes('socket hang up') ? undefined : reject(e)));
  });
}

const start: EngineEvent = {
  type: 'run-start',
  runId: 'r',
  runDir: '/runs/r',
  mode: 'run',
  runbook: 'shop',
  steps: [
    { id: 'enter', kind: 'maintenance.enter', name: 'Maintenance on' },
    { id: 'flip', kind: 'aws.route53.flip' },
  ],
  budgetMs: 600_000,
  resumed: false,
};

describe('status server', () => {
  it('binds to loopback by default and serves GET/HEAD only', async () => {
    server = new StatusServer({ port: 0, runbook: 'shop', mode: 'run' });
    const url = await server.start();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await call(url, 'GET');
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toMatch(/default-src 'none'/);
    expect(page.body).toMatch(/new EventSource\("events"\)/);
    expect((await call(url, 'HEAD')).status).toBe(200);
    for (const m of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const r = await call(`${url}state`, m);
      expect(r.status, m).toBe(405);
      expect(r.headers.allow).toBe('GET, HEAD');
    }
    expect((await call(`${url}nothing`, 'GET')).status).toBe(404);
  });

  it('every new event-stream connection starts with the whole state so far', async () => {
    server = new StatusServer({
      port: 0,
      runbook: 'shop',
      mode: 'run',
      predicted: { lowMs: 1000, highMs: 5000 },
    });
    const url = await server.start();
    server.on(start);
    server.on({ type: 'step', stepId: 'enter', state: 'running' });
    server.on({ type: 'maintenance', state: 'entered', elapsedMs: 0, budgetMs: 600_000 });
    server.on({ type: 'step', stepId: 'enter', state: 'done', durationMs: 1200 });
    server.on({ type: 'log', stepId: 'flip', level: 'warn', message: 'slow DNS' });
    server.on({ type: 'progress', stepId: 'flip', label: 'INSYNC — PENDING' });
    const a = await firstFrame(url);
    expect(a.steps).toEqual([
      expect.objectContaining({ id: 'enter', state: 'done', durationMs: 1200 }),
      expect.objectContaining({ id: 'flip', state: 'pending' }),
    ]);
    expect(a.maintenance).toEqual({ enteredAt: expect.any(Number) });
    expect(a.warnings).toEqual(['flip: slow DNS']);
    expect(a.predicted).toEqual({ lowMs: 1000, highMs: 5000 });
    // A browser that reconnects later gets what happened meanwhile, in full.
    server.on({ type: 'step', stepId: 'flip', state: 'done', durationMs: 3000 });
    server.on({ type: 'maintenance', state: 'exited', elapsedMs: 4200 });
    server.on({
      type: 'run-end',
      status: 'succeeded',
      exitCode: 0,
      durationMs: 5000,
      message: 'cutover complete',
      leftovers: [],
      maintenanceMs: 4200,
    });
    const b = await firstFrame(url);
    expect((b.steps as { state: string }[]).map((s) => s.state)).toEqual(['done', 'done']);
    expect(b.end).toEqual(expect.objectContaining({ status: 'succeeded', exitCode: 0, maintenanceMs: 4200 }));
    expect((b.timeline as { text: string }[]).map((t) => t.text)).toContain('maintenance exited after 4.2s');
  });

  it('a port already taken is one readable error', async () => {
    server = new StatusServer({ port: 0, runbook: 'shop', mode: 'run' });
    const port = Number(new URL(await server.start()).port);
    const other = new StatusServer({ port, runbook: 'shop', mode: 'run' });
    await expect(other.start()).rejects.toThrow(
      `--status-port ${port}: cannot listen on 127.0.0.1:${port} (EADDRINUSE)`,
    );
  });
});

describe('cutover report --serve: the page from the journal alone', () => {
  it('replays a run and follows what is appended to its journal', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { Journal } = await import('../../../src/journal/journal.js');
    const { Redactor } = await import('../../../src/journal/redact.js');
    const { serveJournal } = await import('../../../src/report/status-page.js');
    const dir = mkdtempSync(join(tmpdir(), 'cutover-serve-'));
    const j = Journal.open(dir, 'a'.repeat(64), new Redactor([]));
    j.append('run-start', {
      runId: 'r',
      mode: 'run',
      runbook: { file: '/rb.yaml', name: 'shop', sha256: 'a'.repeat(64) },
      vars: {},
      budgetMs: 600_000,
      steps: [
        { id: 'enter', kind: 'maintenance.enter' },
        { id: 'flip', kind: 'aws.route53.flip' },
      ],
    });
    j.append('step-start', { stepId: 'enter', kind: 'maintenance.enter', inputs: {} });
    j.append('maintenance', { state: 'entered', budgetMs: 600_000 });
    j.append('step-done', { stepId: 'enter', outputs: {}, durationMs: 1200 });
    j.append('step-start', { stepId: 'flip', kind: 'aws.route53.flip', inputs: {} });
    const s = await serveJournal(dir, { port: 0 });
    try {
      const a = JSON.parse((await call(`${s.url}state`, 'GET')).body) as Record<string, unknown>;
      expect(a.runbook).toBe('shop');
      expect((a.steps as { state: string }[]).map((x) => x.state)).toEqual(['done', 'running']);
      expect(a.current).toEqual({ stepId: 'flip' });
      expect(a.end).toBeUndefined();
      j.append('step-done', { stepId: 'flip', outputs: {}, durationMs: 3000 });
      j.append('maintenance', { state: 'exited', elapsedMs: 4200 });
      j.append('run-end', {
        status: 'succeeded',
        exitCode: 0,
        message: 'cutover complete',
        durationMs: 5000,
        leftovers: [],
      });
      await new Promise((r) => setTimeout(r, 800));
      const b = JSON.parse((await call(`${s.url}state`, 'GET')).body) as Record<string, unknown>;
      expect((b.steps as { state: string }[]).map((x) => x.state)).toEqual(['done', 'done']);
      expect(b.end).toEqual(expect.objectContaining({ status: 'succeeded', exitCode: 0 }));
      expect(b.maintenance).toEqual(expect.objectContaining({ elapsedMs: 4200 }));
      expect((await call(s.url, 'POST')).status).toBe(405);
    } finally {
      j.close();
      await s.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
