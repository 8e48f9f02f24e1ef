// ${params.x}, ${env.X}, ${steps.<id>.outputs.<y>}. A value that is exactly one expression keeps the
// referenced value's type (a numeric param stays a number); `$${` escapes a literal `${`.
export const EXPR = /\$\$\{|\$\{\s*([A-Za-z_][\w-]*)((?:\.[\w-]+)+)\s*\}/g;
const WHOLE = /^\$\{\s*([A-Za-z_][\w-]*)((?:\.[\w-]+)+)\s*\}$/;

export interface TemplateRef {
  ns: string;
  path: string[];
  text: string;
}

export interface Scope {
  params: Record<string, unknown>;
  env: Record<string, string | undefined>;
  steps: Record<string, { outputs: Record<string, unknown> }>;
}

export class TemplateError extends Error {
  constructor(
    readonly ref: TemplateRef,
    message: string,
  ) {
    super(message);
  }
}

export function refsIn(s: string): TemplateRef[] {
  const out: TemplateRef[] = [];
  for (const m of s.matchAll(EXPR)) {
    if (m[0] === '$${') continue;
    out.push({ ns: m[1]!, path: m[2]!.slice(1).split('.'), text: m[0] });
  }
  return out;
}

export function lookup(ref: TemplateRef, scope: Scope): unknown {
  const [head, ...rest] = ref.path;
  switch (ref.ns) {
    case 'params':
      if (!Object.hasOwn(scope.params, head!))
        throw new TemplateError(ref, `unknown parameter "${head}" in ${ref.text}`);
      return dig(scope.params[head!], rest, ref);
    case 'env': {
      const v = Object.hasOwn(scope.env, head!) ? scope.env[head!] : undefined;
      if (v === undefined)
        throw new TemplateError(ref, `environment variable ${head} is not set (${ref.text})`);
      return v;
    }
    case 'steps': {
      const step = Object.hasOwn(scope.steps, head!) ? scope.steps[head!] : undefined;
      if (!step) throw new TemplateError(ref, `step "${head}" has no outputs yet (${ref.text})`);
      if (rest[0] !== 'outputs' || rest.length < 2)
        throw new TemplateError(ref, `use \${steps.${head}.outputs.<name>} (${ref.text})`);
      if (!Object.hasOwn(step.outputs, rest[1]!))
        throw new TemplateError(ref, `step "${head}" has no output "${rest[1]}"`);
      return dig(step.outputs[rest[1]!], rest.slice(2), ref);
    }
    default:
      throw new TemplateError(ref, `unknown namespace "${ref.ns}" in ${ref.text} (use params, env or steps)`);
  }
}

function dig(v: unknown, path: string[], ref: TemplateRef): unknown {
  let cur = v;
  for (const k of path) {
    // Own properties only: `${params.x.constructor}` must not reach a built-in member.
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur as object, k))
      throw new TemplateError(ref, `cannot resolve ${ref.text}: no "${k}"`);
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/** POSIX single-word quoting: what a templated value becomes inside a shell command. */
export function shellQuote(s: string): string {
  if (s !== '' && /^[\w@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function stringify(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function renderString(s: string, scope: Scope, quote?: (s: string) => string): unknown {
  if (!s.includes('${')) return s;
  const whole = quote ? null : WHOLE.exec(s);
  if (whole) return lookup({ ns: whole[1]!, path: whole[2]!.slice(1).split('.'), text: s }, scope);
  return s.replace(EXPR, (m, ns: string | undefined, path: string | undefined) => {
    if (m === '$${') return '${';
    const v = stringify(lookup({ ns: ns!, path: path!.slice(1).split('.'), text: m }, scope));
    return quote ? quote(v) : v;
  });
}

export type Quoting = Readonly<Record<string, (s: string) => string>>;

/** Quoting per top-level `with` key declared by a kind: shell words or JSON literals. */
export function quotingFor(k: { shellFields?: readonly string[]; exprFields?: readonly string[] }): Quoting {
  const q: Record<string, (s: string) => string> = {};
  for (const f of k.shellFields ?? []) q[f] = shellQuote;
  for (const f of k.exprFields ?? []) q[f] = jsonLiteral;
  return q;
}

function jsonLiteral(s: string): string {
  // Numbers and booleans stay themselves; anything else becomes a JSON string.
  return /^-?\d+(\.\d+)?$|^(true|false|null)$/.test(s) ? s : JSON.stringify(s);
}

/** Deep-render a value; top-level keys named in `quoting` get their substitutions quoted. */
export function render(value: unknown, scope: Scope, quoting: Quoting = {}): unknown {
  const walk = (v: unknown, quote?: (s: string) => string): unknown => {
    if (typeof v === 'string') return renderString(v, scope, quote);
    if (Array.isArray(v)) return v.map((x) => walk(x, quote));
    if (v && typeof v === 'object')
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, quote)]));
    return v;
  };
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, x]) => [k, walk(x, quoting[k])]));
  }
  return walk(value);
}

/** Renders what can be rendered now; values that only exist at run time stay templates. */
export function renderKnown(v: unknown, scope: Scope): unknown {
  if (typeof v === 'string') {
    try {
      return renderString(v, scope);
    } catch {
      return v;
    }
  }
  if (Array.isArray(v)) return v.map((x) => renderKnown(x, scope));
  if (v && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, renderKnown(x, scope)]));
  return v;
}
