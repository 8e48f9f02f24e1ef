// Environment variables are strings: "${env.PORT}" renders "3306". Where a kind's schema wants a
// number or boolean and the string is exactly one, convert it and parse again, instead of making
// every kind declare coercing fields.
import type { z } from 'zod';

export function parseParams<T>(schema: z.ZodType<T>, value: unknown): ReturnType<z.ZodType<T>['safeParse']> {
  let current = value;
  for (let round = 0; round < 20; round++) {
    const r = schema.safeParse(current);
    if (r.success) return r;
    let changed = false;
    for (const iss of r.error.issues) {
      if (iss.code !== 'invalid_type') continue;
      const expected = (iss as { expected?: string }).expected;
      const got = getAt(current, iss.path as (string | number)[]);
      if (typeof got !== 'string') continue;
      if (expected === 'number' && got.trim() !== '' && !Number.isNaN(Number(got))) {
        current = setAt(current, iss.path as (string | number)[], Number(got));
        changed = true;
      } else if (expected === 'boolean' && (got === 'true' || got === 'false')) {
        current = setAt(current, iss.path as (string | number)[], got === 'true');
        changed = true;
      }
    }
    if (!changed) return r;
  }
  return schema.safeParse(current);
}

function getAt(v: unknown, path: (string | number)[]): unknown {
  let cur = v;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[k];
  }
  return cur;
}

function setAt(v: unknown, path: (string | number)[], value: unknown): unknown {
  if (!path.length) return value;
  const [head, ...rest] = path;
  if (Array.isArray(v)) return v.map((x, i) => (i === head ? setAt(x, rest, value) : x));
  const obj = (v ?? {}) as Record<string | number, unknown>;
  return { ...obj, [head!]: setAt(obj[head!], rest, value) };
}
