// Secrets are replaced before anything is written or shown: journal, terminal, reports.
export const REDACTED = '***';

export class Redactor {
  private readonly secrets: string[];
  constructor(secrets: Iterable<string> = []) {
    // Longest first, so a secret containing another is replaced whole.
    this.secrets = [...new Set([...secrets].filter((s) => s.length >= 3))].sort((a, b) => b.length - a.length);
  }

  add(secret: string): void {
    if (secret.length >= 3 && !this.secrets.includes(secret)) {
      this.secrets.push(secret);
      this.secrets.sort((a, b) => b.length - a.length);
    }
  }

  text(s: string): string {
    let out = s;
    for (const secret of this.secrets) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    return out;
  }

  value<T>(v: T): T {
    if (!this.secrets.length) return v;
    return this.walk(v, new WeakSet()) as T;
  }

  private walk(v: unknown, seen: WeakSet<object>): unknown {
    if (typeof v === 'string') return this.text(v);
    if (v === null || typeof v !== 'object') return v;
    if (seen.has(v)) return '[circular]';
    seen.add(v);
    if (Array.isArray(v)) return v.map((x) => this.walk(x, seen));
    if (v instanceof Error) return { name: v.name, message: this.text(v.message) };
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, this.walk(x, seen)]));
  }
}
