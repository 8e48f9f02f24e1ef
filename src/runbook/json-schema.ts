// The runbook JSON Schema for editors (yaml-language-server): the generic step shape, plus one
// branch per kind so `with:` autocompletes with that kind's parameters. It must accept every
// runbook the loader accepts (an editor showing errors on a valid runbook teaches people to ignore
// it) and refuse what it can see is wrong without running anything: durations, enums, unknown keys.
import { z } from 'zod';
import { DURATION_HINT } from '../duration.js';
import type { StepKind } from '../engine/types.js';
import { kinds } from '../steps/registry.js';
import { Duration, MAX_DURATION_MS, RunbookSpec } from './schema.js';

type Json = Record<string, any>;

/** What parseDuration accepts as text (it trims first): "90", "500ms", "1h30m". */
const DURATION_TEXT = String.raw`^\s*(\d+(\.\d+)?|(\d+(\.\d+)?(ms|s|m|h))+)\s*$`;
/** The same with a non-zero digit somewhere: where the loader refuses a zero duration. */
const POSITIVE_DURATION_TEXT = String.raw`^(?=.*[1-9])\s*(\d+(\.\d+)?|(\d+(\.\d+)?(ms|s|m|h))+)\s*$`;
/** A value with a ${...} reference: rendered before the kind's schema sees it. */
const TEMPLATE = { type: 'string', pattern: String.raw`\$\{[^}]*\}`, description: 'a ${...} reference' };
/** parseParams (coerce.ts) turns a string that is exactly a number or true/false into one. */
const NUMBER_TEXT = String.raw`^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$`;
const TEMPLATE_OR_NUMBER = { type: 'string', pattern: `${TEMPLATE.pattern}|${NUMBER_TEXT}` };
const TEMPLATE_OR_BOOLEAN = { type: 'string', pattern: `${TEMPLATE.pattern}|^(true|false)$` };

const durationCheck = (Duration as unknown as { _zod: { def: { checks: unknown[] } } })._zod.def.checks[0];

function duration(positive = false): Json {
  return {
    anyOf: [
      { type: 'string', pattern: positive ? POSITIVE_DURATION_TEXT : DURATION_TEXT },
      { type: 'number', [positive ? 'exclusiveMinimum' : 'minimum']: 0, maximum: MAX_DURATION_MS / 1000 },
    ],
  };
}

function toJson(schema: z.ZodType): Json {
  const out = z.toJSONSchema(schema, {
    io: 'input',
    unrepresentable: 'any',
    // Durations are a refine (parseDuration), invisible to JSON Schema: say what they look like.
    override: (ctx) => {
      const checks = (ctx.zodSchema as unknown as { _zod: { def: { checks?: unknown[] } } })._zod.def.checks;
      if (checks?.includes(durationCheck)) Object.assign(ctx.jsonSchema, duration());
    },
  }) as Json;
  delete out.$schema;
  return out;
}

function acceptsAnyString(s: Json): boolean {
  return (
    s.type === 'string' &&
    s.pattern === undefined &&
    s.format === undefined &&
    s.enum === undefined &&
    s.const === undefined &&
    s.maxLength === undefined
  );
}

/**
 * A kind's `with:` is rendered before its schema checks it: any value below it may be a ${...}
 * reference instead (a URL, a group id, a port, a list parameter), and a number or boolean may be
 * its text. Objects keep their shape (for completion); what is in them gets the alternative.
 */
function templatable(s: Json): Json {
  if (!s || typeof s !== 'object') return s;
  if (s.properties) for (const k of Object.keys(s.properties)) s.properties[k] = templatable(s.properties[k]);
  if (s.additionalProperties && typeof s.additionalProperties === 'object')
    s.additionalProperties = templatable(s.additionalProperties);
  if (s.items) s.items = templatable(s.items);
  for (const key of ['anyOf', 'oneOf'] as const) if (s[key]) s[key] = s[key].map(templatable);
  if (s.type === 'object' || acceptsAnyString(s) || Object.keys(s).length === 0) return s;
  if (s.anyOf?.some((b: Json) => acceptsAnyString(b))) return s;
  const types = new Set<string>([s.type, ...(s.anyOf ?? []).map((b: Json) => b.type)].filter(Boolean));
  const alternatives: Json[] = [];
  if (types.has('number') || types.has('integer')) alternatives.push(TEMPLATE_OR_NUMBER);
  if (types.has('boolean')) alternatives.push(TEMPLATE_OR_BOOLEAN);
  const { description, ...rest } = s;
  return {
    ...(description !== undefined ? { description } : {}),
    anyOf: [rest, ...(alternatives.length ? alternatives : [TEMPLATE])],
  };
}

/** if kind is X then `with` is X's parameters ($defs, shared by steps, checks and rollbacks). */
function withByKind(list: StepKind[]): Json[] {
  return list.map((k) => ({
    if: { properties: { kind: { const: k.kind } }, required: ['kind'] },
    // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then, not a thenable
    then: { properties: { with: { $ref: `#/$defs/with-${k.kind}` } } },
  }));
}

function withDefs(list: StepKind[]): Json {
  const defs: Json = {};
  for (const k of list) {
    try {
      defs[`with-${k.kind}`] = templatable(toJson(k.params));
    } catch {
      defs[`with-${k.kind}`] = { type: 'object' };
    }
  }
  return defs;
}

function kindEnum(list: StepKind[], description: string): Json {
  return { type: 'string', enum: list.map((k) => k.kind), description };
}

export function runbookJsonSchema(): Record<string, unknown> {
  const base = toJson(RunbookSpec);
  const all = [...kinds.values()];
  const readOnly = all.filter((k) => k.readOnly);
  const perKind = withByKind(all);

  const step = base.properties.steps.items as Json;
  step.properties.kind = kindEnum(all, 'the step kind (`cutover kinds` lists them)');
  // The validator refuses a zero step timeout or retry delay; the budget's own refine does too.
  for (const key of ['timeout', 'undoTimeout', 'retryDelay'])
    step.properties[key] = { ...duration(true), description: DURATION_HINT };
  step.allOf = perKind;
  for (const phase of ['before', 'after']) {
    const check = step.properties[phase].items as Json;
    check.properties.kind = kindEnum(readOnly, 'a read-only step kind');
    check.allOf = withByKind(readOnly);
  }
  const rollback = (step.properties.rollback.anyOf as Json[]).find((b) => b.type === 'object')!;
  rollback.properties.kind = kindEnum(all, 'the kind that undoes this step');
  rollback.allOf = perKind;
  const budget = base.properties.maintenance.properties.budget as Json;
  base.properties.maintenance.properties.budget = { ...duration(true), description: budget.description };

  // Databases: host, port, database and resolvers are rendered (${env.X}); a password is only
  // ever a reference — written in the runbook it would be copied into every run directory.
  const db = base.properties.databases.additionalProperties as Json;
  db.properties.port = {
    anyOf: [
      { type: 'integer', minimum: 1, maximum: 65535 },
      { type: 'string', pattern: String.raw`${TEMPLATE.pattern}|^\s*\d+\s*$` },
    ],
  };
  const refs = db.properties.password.anyOf.filter((b: Json) => b.type !== 'string');
  db.properties.password = {
    description: 'a reference, never the password: { env: NAME }, { file: PATH } or "${env.NAME}"',
    anyOf: [TEMPLATE, ...refs],
  };

  // A secret parameter's value is never written in the runbook either: its default is a reference.
  const param = (base.properties.params.additionalProperties.anyOf as Json[]).find(
    (b) => b.type === 'object',
  )!;
  param.if = { properties: { secret: { const: true } }, required: ['secret'] };
  // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then, not a thenable
  param.then = { properties: { default: TEMPLATE } };

  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://github.com/cutover/cutover/schema/runbook.schema.json',
    title: 'cutover runbook',
    ...base,
    $defs: withDefs(all),
  };
}

export interface KindParam {
  name: string;
  required: boolean;
  type: string;
  default?: unknown;
  description?: string;
}

/** One line per `with:` key of a kind, for `cutover kinds NAME`: what to write, not the schema. */
export function kindParams(k: StepKind): KindParam[] {
  let s: Json;
  try {
    s = toJson(k.params);
  } catch {
    return [];
  }
  const required = new Set<string>(s.required ?? []);
  return Object.entries((s.properties ?? {}) as Record<string, Json>).map(([name, p]) => ({
    name,
    required: required.has(name),
    type: typeText(p),
    ...(defaultOf(p) !== undefined ? { default: defaultOf(p) } : {}),
    ...(descriptionOf(p) ? { description: descriptionOf(p) } : {}),
  }));
}

const isDuration = (s: Json) =>
  s.anyOf?.some((b: Json) => b.pattern === DURATION_TEXT || b.pattern === POSITIVE_DURATION_TEXT);

function typeText(s: Json): string {
  if (isDuration(s)) return 'duration';
  if (s.enum) return s.enum.map((v: unknown) => JSON.stringify(v)).join(' | ');
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.anyOf) return [...new Set((s.anyOf as Json[]).map(typeText))].filter((t) => t !== 'any').join(' or ');
  if (Array.isArray(s.type)) return s.type.map((type: string) => typeText({ ...s, type })).join(' or ');
  switch (s.type) {
    case 'integer':
    case 'number':
      // Bounds a reader wrote (a port's), not the safe-integer ones zod puts on every int.
      return s.minimum !== undefined &&
        Math.abs(s.maximum ?? Number.MAX_SAFE_INTEGER) < Number.MAX_SAFE_INTEGER
        ? `number ${s.minimum}–${s.maximum}`
        : 'number';
    case 'string':
      return 'text';
    case 'boolean':
      return 'true | false';
    case 'null':
      return 'null';
    case 'array':
      return `list of ${s.items ? typeText(s.items) : 'values'}`;
    case 'object':
      if (s.properties) return `{ ${Object.keys(s.properties).join(', ')} }`;
      if (s.additionalProperties && typeof s.additionalProperties === 'object')
        return `map of ${typeText(s.additionalProperties)}`;
      return 'object';
    default:
      return 'any';
  }
}

function defaultOf(s: Json): unknown {
  return s.default ?? (s.anyOf as Json[] | undefined)?.map(defaultOf).find((d) => d !== undefined);
}

function descriptionOf(s: Json): string | undefined {
  return s.description ?? (s.anyOf as Json[] | undefined)?.map(descriptionOf).find(Boolean);
}
