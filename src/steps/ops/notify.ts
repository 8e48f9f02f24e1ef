// notify: tell people (Slack-compatible webhook, or any JSON endpoint) at a chosen moment. A webhook
// that fails, times out or refuses never fails the cutover: it is warned about and the run goes on.
// The webhook URL is a secret (it is the credential, for Slack): only its host is ever shown.
import { z } from 'zod';
import type { HttpRequest, HttpResponse } from '../../adapters/http.js';
import { parseDuration } from '../../duration.js';
import { errorMessage } from '../../errors.js';
import { defineKind } from '../../engine/types.js';
import { Duration } from '../../runbook/schema.js';
import { redact, resolveValue, secretValues, urlHost, ValueOrEnv } from './common.js';

export type WebhookFormat = 'slack' | 'json';

export function webhookBody(
  format: WebhookFormat,
  text: string,
  fields: Record<string, unknown> = {},
): string {
  // Slack reads `text`; a plain JSON receiver gets the same text plus the structured fields.
  return JSON.stringify(format === 'slack' ? { ...fields, text } : { text, ...fields });
}

export interface WebhookResult {
  delivered: boolean;
  status?: number;
  problem?: string;
}

/** Posts; never throws. The problem names the host only, never the URL's secret path. */
export async function postWebhook(
  send: (req: HttpRequest & { describe?: string }) => Promise<HttpResponse>,
  o: {
    url: string;
    format: WebhookFormat;
    text: string;
    fields?: Record<string, unknown>;
    timeoutMs: number;
    signal?: AbortSignal;
  },
): Promise<WebhookResult> {
  const host = urlHost(o.url);
  try {
    const r = await send({
      url: o.url,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: webhookBody(o.format, o.text, o.fields),
      timeoutMs: o.timeoutMs,
      ...(o.signal ? { signal: o.signal } : {}),
      describe: `webhook ${host}: ${JSON.stringify(o.text)}`,
    });
    if (r.status >= 200 && r.status < 300) return { delivered: true, status: r.status };
    return { delivered: false, status: r.status, problem: `webhook ${host} answered ${r.status}` };
  } catch (e) {
    if (o.signal?.aborted) throw e;
    const code = (e as { code?: string }).code;
    const why =
      code === 'HTTP_TIMEOUT'
        ? `no answer within ${o.timeoutMs}ms`
        : errorMessage(e).replace(`${o.url}: `, '').split(o.url).join(host);
    return { delivered: false, problem: `webhook ${host}: ${why}` };
  }
}

/** Secret-named env values out of every string in the fields (their keys are kept). */
function redactFields(v: Record<string, unknown>, secrets: readonly string[]): Record<string, unknown> {
  const walk = (x: unknown): unknown =>
    typeof x === 'string'
      ? redact(x, secrets)
      : Array.isArray(x)
        ? x.map(walk)
        : x && typeof x === 'object'
          ? Object.fromEntries(Object.entries(x).map(([k, y]) => [k, walk(y)]))
          : x;
  return walk(v) as Record<string, unknown>;
}

const Params = z.lazy(() =>
  z
    .object({
      webhook: ValueOrEnv.describe(
        'webhook URL, or { env: NAME } (a Slack webhook URL is a credential: keep it out of the runbook)',
      ),
      message: z.string().min(1),
      format: z
        .enum(['slack', 'json'])
        .optional()
        .describe('slack: {"text": ...} (default); json: {"text", runId, stepId, ...fields}'),
      fields: z
        .record(z.string(), z.unknown())
        .optional()
        .describe('extra JSON fields sent with the message'),
      timeout: Duration.optional().describe('default 5s'),
    })
    .strict(),
);
type P = z.infer<typeof Params>;

export const notify = defineKind<P, undefined, { delivered: boolean; status: number | null }>({
  kind: 'notify',
  summary: 'post a message to a webhook (Slack-compatible or JSON); a failing webhook only warns',
  params: Params,
  outputs: ['delivered', 'status'],
  validate(p, v) {
    if (typeof p.webhook === 'string' && !p.webhook.includes('${')) {
      try {
        const u = new URL(p.webhook);
        if (!/^https?:$/.test(u.protocol)) v.issue(['webhook'], 'the webhook must be an http(s) URL');
        else if (u.pathname.length > 1 || u.search)
          v.issue(
            ['webhook'],
            'the webhook URL is written in the runbook: use { env: NAME } to keep its secret path out of files and journals',
            'warning',
          );
      } catch {
        v.issue(['webhook'], 'not a URL');
      }
    }
  },
  describe: (p) => [
    `would post to ${typeof p.webhook === 'string' ? `webhook ${urlHost(p.webhook)}` : `the webhook in $${p.webhook.env}`}: ${JSON.stringify(p.message)}`,
  ],
  async apply(ctx, p) {
    const env = ctx.adapters.env.env;
    let url: string;
    try {
      url = resolveValue(p.webhook, env, 'webhook');
    } catch (e) {
      ctx.warn(`notification not sent: ${errorMessage(e)}`);
      return { delivered: false, status: null };
    }
    const format = p.format ?? 'slack';
    // Redacted as the journal is: the run's secrets (refs, secret params), and secret-named env values.
    const clean = <T>(v: T): T => {
      const r = ctx.redact ? ctx.redact(v) : v;
      return typeof r === 'string' ? (redact(r, secretValues(env)) as T) : r;
    };
    const fields = format === 'json' ? { runId: ctx.runId, stepId: ctx.stepId, ...p.fields } : p.fields;
    const r = await postWebhook((req) => ctx.adapters.http.send(req), {
      url,
      format,
      text: clean(p.message),
      ...(fields ? { fields: redactFields(clean(fields), secretValues(env)) } : {}),
      timeoutMs: p.timeout !== undefined ? parseDuration(p.timeout)! : 5000,
      signal: ctx.signal,
    });
    if (!r.delivered) ctx.warn(`notification not delivered (the run goes on): ${r.problem}`);
    return { delivered: r.delivered, status: r.status ?? null };
  },
});
