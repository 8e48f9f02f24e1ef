// Plain node:http so a check can bind a local address (bypass-by-CIDR tests) and time itself.
import type { AdapterEnv } from './adapters.js';

export interface HttpRequest {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs?: number;
  /** Source address to bind, e.g. an office address inside a maintenance bypass CIDR. */
  localAddress?: string;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  durationMs: number;
}

export interface HttpAdapter {
  /** GET/HEAD-style reads; run in both modes. */
  get(req: HttpRequest): Promise<HttpResponse>;
  /** Requests that change something (maintenance toggles, webhooks); recorded in dry run. */
  send(req: HttpRequest & { describe?: string }): Promise<HttpResponse>;
}

export class HttpRequestError extends Error {
  readonly code: string;
  constructor(url: string, cause: unknown) {
    const c = cause as { code?: string; message?: string };
    const reason = c?.code === 'ETIMEDOUT_REQ' ? 'timed out' : (c?.code ?? c?.message ?? String(cause));
    super(`${url}: ${reason}`);
    this.code = c?.code === 'ETIMEDOUT_REQ' ? 'HTTP_TIMEOUT' : 'HTTP_UNREACHABLE';
  }
}

export async function httpRequest(req: HttpRequest): Promise<HttpResponse> {
  const url = new URL(req.url);
  const mod = url.protocol === 'https:' ? await import('node:https') : await import('node:http');
  const started = performance.now();
  return new Promise<HttpResponse>((resolve, reject) => {
    const r = mod.request(
      url,
      {
        method: req.method ?? 'GET',
        headers: { 'user-agent': 'cutover', ...req.headers },
        localAddress: req.localAddress,
        signal: req.signal,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: Object.fromEntries(
              Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]),
            ),
            body: Buffer.concat(chunks).toString('utf8'),
            durationMs: performance.now() - started,
          }),
        );
        res.on('error', (e) => reject(new HttpRequestError(req.url, e)));
      },
    );
    const timeout = req.timeoutMs ?? 10_000;
    r.setTimeout(timeout, () => r.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT_REQ' })));
    r.on('error', (e) => reject(new HttpRequestError(req.url, e)));
    if (req.body !== undefined) r.write(req.body);
    r.end();
  });
}

export function createHttpAdapter(env: AdapterEnv): HttpAdapter {
  return {
    get(req) {
      env.countRead('http.get');
      return httpRequest(req);
    },
    async send(req) {
      if (env.mode === 'dry') {
        env.record({ action: `${(req.method ?? 'POST').toLowerCase()}`, target: req.describe ?? req.url });
        env.stats.recorded['http.send'] = (env.stats.recorded['http.send'] ?? 0) + 1;
        return { status: 200, headers: {}, body: '', durationMs: 0 };
      }
      env.countWrite('http.send');
      return httpRequest(req);
    },
  };
}
