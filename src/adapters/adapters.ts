// One interface per outside system with a live and a recording (dry-run) implementation, chosen
// once per run: step kinds never test for dry run, they just call the adapter they were given.
import type { DatabaseConfig } from '../runbook/schema.js';
import { createHttpAdapter, type HttpAdapter } from './http.js';
import { createShellAdapter, type ShellAdapter } from './shell.js';

export type AdapterMode = 'live' | 'dry';

export interface PlannedChange {
  /** Verb in the infinitive: "revoke", "set", "upsert", "run". Rendered as "would <action>". */
  action: string;
  target: string;
  before?: unknown;
  after?: unknown;
  detail?: string;
}

export interface AdapterStats {
  reads: Record<string, number>;
  writes: Record<string, number>;
  /** Writes a recording adapter intercepted (dry run). */
  recorded: Record<string, number>;
}

export interface AwsSettings {
  endpoint?: string;
  region?: string;
  profile?: string;
}

export interface AdapterEnv {
  readonly mode: AdapterMode;
  /** Process env merged with the runbook's env files. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  readonly aws: AwsSettings;
  readonly stats: AdapterStats;
  database(name: string): DatabaseConfig;
  /** Called by recording adapters for every write they intercept. */
  record(change: PlannedChange): void;
  countRead(op: string): void;
  countWrite(op: string): void;
}

export interface AdapterFactory<T, A extends string | undefined = undefined> {
  readonly name: string;
  live(env: AdapterEnv, arg: A): Promise<T>;
  dry(env: AdapterEnv, arg: A): Promise<T>;
  close?(instance: T): Promise<void>;
}

export function renderChange(c: PlannedChange): string {
  const fmt = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));
  let line = `would ${c.action} ${c.target}`;
  if (c.detail) line += `: ${c.detail}`;
  if (c.before !== undefined || c.after !== undefined)
    line += ` (${fmt(c.before ?? '∅')} → ${fmt(c.after ?? '∅')})`;
  return line;
}

export class Adapters {
  readonly shell: ShellAdapter;
  readonly http: HttpAdapter;
  private readonly cache = new Map<string, Promise<unknown>>();
  private readonly owners = new Map<string, AdapterFactory<any, any>>();

  constructor(readonly env: AdapterEnv) {
    this.shell = createShellAdapter(env);
    this.http = createHttpAdapter(env);
  }

  get mode(): AdapterMode {
    return this.env.mode;
  }

  /** The adapter of a factory for an argument (e.g. a database name), created once and reused. */
  use<T, A extends string | undefined>(factory: AdapterFactory<T, A>, arg: A): Promise<T> {
    const key = `${factory.name}:${arg ?? ''}`;
    let p = this.cache.get(key) as Promise<T> | undefined;
    if (!p) {
      p = this.env.mode === 'live' ? factory.live(this.env, arg) : factory.dry(this.env, arg);
      // A failed connection must not be cached: the next attempt (a retry) tries again.
      p.catch(() => this.cache.delete(key));
      this.cache.set(key, p);
      this.owners.set(key, factory);
    }
    return p;
  }

  async closeAll(): Promise<void> {
    const entries = [...this.cache.entries()];
    this.cache.clear();
    await Promise.allSettled(
      entries.map(async ([key, p]) => {
        const f = this.owners.get(key);
        const inst = await p;
        await f?.close?.(inst);
      }),
    );
  }
}

export function newStats(): AdapterStats {
  return { reads: {}, writes: {}, recorded: {} };
}

export function totalWrites(s: AdapterStats): number {
  return Object.values(s.writes).reduce((a, b) => a + b, 0);
}
