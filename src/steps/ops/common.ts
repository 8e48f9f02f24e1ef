// Pieces shared by the ops kinds and the lifecycle: shell quoting, values that may come from the
// environment (so tokens and webhook URLs stay out of the journal's step inputs), redaction.
import { z } from 'zod';
import { StepError } from '../../errors.js';

/** One shell word, whatever the value holds (`;`, `$()`, quotes, newlines). */
export function shq(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A literal value, or `{ env: NAME }` read at run time so the value is never journaled as an input. */
export const ValueOrEnv = z.union([
  z.string(),
  z.object({ env: z.string().min(1).describe('environment variable holding the value') }).strict(),
]);
export type ValueOrEnvT = z.infer<typeof ValueOrEnv>;

export function resolveValue(
  v: ValueOrEnvT,
  env: Readonly<Record<string, string | undefined>>,
  what: string,
): string {
  if (typeof v === 'string') return v;
  const value = env[v.env];
  if (value === undefined || value === '')
    throw new StepError('ENV_VALUE_MISSING', `${what}: environment variable ${v.env} is not set`);
  return value;
}

export const HeaderMap = z
  .record(z.string(), ValueOrEnv)
  .describe('request headers; a value may be { env: NAME } to keep a token out of the journal');

export function resolveHeaders(
  h: Record<string, ValueOrEnvT> | undefined,
  env: Readonly<Record<string, string | undefined>>,
  what: string,
): Record<string, string> | undefined {
  if (!h) return undefined;
  return Object.fromEntries(
    Object.entries(h).map(([k, v]) => [k, resolveValue(v, env, `${what} header ${k}`)]),
  );
}

const SECRET_NAME = /PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE|CREDENTIAL|API_?KEY|ACCESS_?KEY|WEBHOOK/i;

/** Values of environment variables whose names say they are secret: never sent in a message. */
export function secretValues(env: Readonly<Record<string, string | undefined>>): string[] {
  return Object.entries(env)
    .filter(([k, v]) => SECRET_NAME.test(k) && typeof v === 'string' && v.length >= 4)
    .map(([, v]) => v as string)
    .sort((a, b) => b.length - a.length);
}

export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join('***');
  return out;
}

/** Scheme and host of a URL: enough to name a webhook without its secret path. */
export function urlHost(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return '(invalid URL)';
  }
}

/** Last lines of a command's output, on one line, for an error message. */
export function tail(text: string, lines = 3, max = 300): string {
  const t = text.trim().split('\n').slice(-lines).join(' | ');
  return t.length > max ? `${t.slice(0, max)}…` : t;
}
