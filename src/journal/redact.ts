// Secrets are replaced before anything is written or shown: journal, terminal, reports.
export const REDACTED = '***';

/**
 * The forms a secret takes once templated: as is, escaped inside a shell single-quoted word
 * (shell.run fields), escaped inside a JSON string (assert expressions, JSON-rendered values) and
 * both. Each must be redacted, or a password with a quote in it shows through its escaped form.
 */
function forms(secret: string): string[] {
  const json = (s: string) => JSON.stringify(s).slice(1, -1);
  const shell = secret.replace(/'/g, `'\\''`);
  return [secret, shell, json(secret), json(shell)];
}

/**
 * Fields that name things — step ids, kinds, the runbook's path — are never rewritten: a secret that
 * happens to be part of an id once turned ids into `***-marker`, and rollback then matched no step.
 * Paths from the record's (or event's) top; `*` is any array index.
 */
const STRUCTURAL = new Set([
  'stepId',
  'kind',
  'steps.*',
  'steps.*.id',
  'steps.*.kind',
  'undo.*.stepId',
  'undo.*.via',
  'notUndone.*',
  'leftovers.*.stepId',
  'runbook.file',
  'runbook.name',
  'cwd',
  'log',
]);

export class Redactor {
  private readonly secrets: string[];
  constructor(secrets: Iterable<string> = []) {
    // Longest first, so a secret containing another is replaced whole.
    this.secrets = [...new Set([...secrets].filter((s) => s.length >= 3).flatMap(forms))].sort(
      (a, b) => b.length - a.length,
    );
  }

  add(secret: string): void {
    if (secret.length < 3) return;
    for (const f of forms(secret)) if (!this.secrets.includes(f)) this.secrets.push(f);
    this.secrets.sort((a, b) => b.length - a.length);
  }

  text(s: string): string {
    let out = s;
    for (const secret of this.secrets) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    return out;
  }

  value<T>(v: T): T {
    if (!this.secrets.length) return v;
    return this.walk(v, new WeakSet(), '') as T;
  }

  private walk(v: unknown, seen: WeakSet<object>, path: string): unknown {
    if (typeof v === 'string') return STRUCTURAL.has(path) ? v : this.text(v);
    if (v === null || typeof v !== 'object') return v;
    if (seen.has(v)) return '[circular]';
    seen.add(v);
    const at = (k: string) => (path ? `${path}.${k}` : k);
    if (Array.isArray(v)) return v.map((x) => this.walk(x, seen, at('*')));
    if (v instanceof Error) return { name: v.name, message: this.text(v.message) };
    // Keys are kept as they are: only values are secrets.
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, this.walk(x, seen, at(k))]));
  }
}
