import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseDuration } from '../../duration.js';
import { formatMs, StepError } from '../../errors.js';
import { defineKind } from '../../engine/types.js';
import { Duration } from '../../runbook/schema.js';
import { jsonPathGet } from '../../util/json-path.js';

/** A header value, or a reference that keeps a token out of the runbook (both are redacted). */
export const HeaderValue = z.lazy(() =>
  z.union([
    z.string(),
    z.object({ env: z.string().min(1).describe('environment variable holding the value') }).strict(),
    z
      .object({ file: z.string().min(1).describe('file holding the value (relative to the runbook)') })
      .strict(),
  ]),
);
export type HeaderValueT = z.infer<typeof HeaderValue>;

export function resolveHeaderValues(
  h: Record<string, HeaderValueT> | undefined,
  env: Readonly<Record<string, string | undefined>>,
): Record<string, string> | undefined {
  if (!h) return undefined;
  const one = (name: string, v: HeaderValueT): string => {
    if (typeof v === 'string') return v;
    if ('env' in v) {
      const val = env[v.env];
      if (val === undefined || val === '')
        throw new StepError('ENV_VALUE_MISSING', `header ${name}: environment variable ${v.env} is not set`);
      return val;
    }
    try {
      // The validator made the path absolute (relative to the runbook) and registered the value as a secret.
      return readFileSync(v.file, 'utf8').replace(/\r?\n$/, '');
    } catch {
      throw new StepError('SECRET_FILE_UNREADABLE', `header ${name}: file ${v.file} cannot be read`);
    }
  };
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k, one(k, v)]));
}

export const HttpExpectation = z.lazy(() =>
  z
    .object({
      url: z.string().url(),
      method: z.enum(['GET', 'HEAD', 'POST', 'PUT']).optional(),
      headers: z
        .record(z.string(), HeaderValue)
        .optional()
        .describe(
          'request headers; a value may be { env: NAME } or { file: PATH } to keep a token out of the runbook',
        ),
      body: z.string().optional(),
      localAddress: z.string().optional().describe('bind this source address (e.g. inside a bypass CIDR)'),
      status: z
        .union([z.number().int(), z.array(z.number().int())])
        .optional()
        .describe('expected status (default 200-399)'),
      bodyContains: z.string().optional(),
      bodyMatches: z.string().optional().describe('a regular expression'),
      json: z
        .object({ path: z.string(), equals: z.unknown().optional(), exists: z.boolean().optional() })
        .strict()
        .optional()
        .describe('a JSON path like $.items[0].id and the value it must have'),
      maxLatency: Duration.optional(),
      timeout: Duration.optional(),
    })
    .strict(),
);
export type HttpExpectationT = z.infer<typeof HttpExpectation>;

export interface HttpResult {
  url: string;
  status: number;
  latencyMs: number;
  ok: boolean;
  problems: string[];
}

/** One request, judged against its expectations. Shared by http.check, smoke and maintenance kinds. */
export async function checkHttp(
  http: import('../../adapters/http.js').HttpAdapter,
  e: HttpExpectationT,
  signal?: AbortSignal,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<HttpResult & { body: string }> {
  const res = await http.get({
    url: e.url,
    method: e.method,
    headers: resolveHeaderValues(e.headers, env),
    body: e.body,
    localAddress: e.localAddress,
    timeoutMs: e.timeout !== undefined ? parseDuration(e.timeout) : 10_000,
    signal,
  });
  const problems: string[] = [];
  const want = e.status === undefined ? undefined : Array.isArray(e.status) ? e.status : [e.status];
  if (want ? !want.includes(res.status) : res.status < 200 || res.status >= 400)
    problems.push(`status ${res.status}, expected ${want ? want.join(' or ') : '2xx/3xx'}`);
  if (e.bodyContains !== undefined && !res.body.includes(e.bodyContains))
    problems.push(`body does not contain ${JSON.stringify(e.bodyContains)}`);
  if (e.bodyMatches !== undefined && !new RegExp(e.bodyMatches).test(res.body))
    problems.push(`body does not match /${e.bodyMatches}/`);
  if (e.json) {
    let doc: unknown;
    try {
      doc = JSON.parse(res.body);
    } catch {
      problems.push('body is not JSON');
    }
    if (doc !== undefined) {
      const got = jsonPathGet(doc, e.json.path);
      if (e.json.exists === false ? got.found : !got.found)
        problems.push(`${e.json.path} ${got.found ? 'exists' : 'is missing'}`);
      else if (
        'equals' in e.json &&
        e.json.equals !== undefined &&
        JSON.stringify(got.value) !== JSON.stringify(e.json.equals)
      )
        problems.push(
          `${e.json.path} is ${JSON.stringify(got.value)}, expected ${JSON.stringify(e.json.equals)}`,
        );
    }
  }
  const max = e.maxLatency !== undefined ? parseDuration(e.maxLatency)! : undefined;
  if (max !== undefined && res.durationMs > max)
    problems.push(`took ${formatMs(res.durationMs)}, limit ${formatMs(max)}`);
  return {
    url: e.url,
    status: res.status,
    latencyMs: Math.round(res.durationMs),
    ok: problems.length === 0,
    problems,
    body: res.body,
  };
}

export const httpCheck = defineKind<HttpExpectationT, undefined, { status: number; latencyMs: number }>({
  kind: 'http.check',
  summary: 'HTTP request checked for status, body and latency',
  params: HttpExpectation,
  readOnly: true,
  outputs: ['status', 'latencyMs'],
  describe: (p) => [`would check ${p.method ?? 'GET'} ${p.url}`],
  async apply(ctx, p) {
    const r = await checkHttp(ctx.adapters.http, p, ctx.signal, ctx.adapters.env.env);
    if (!r.ok)
      throw new StepError('HTTP_CHECK_FAILED', `${p.url}: ${r.problems.join('; ')}`, {
        status: r.status,
        latencyMs: r.latencyMs,
      });
    return { status: r.status, latencyMs: r.latencyMs };
  },
});
