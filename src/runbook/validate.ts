// Schema + semantic checks. Everything here is read-only: validation passes before anything runs.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import { visit } from 'yaml';
import type { z } from 'zod';
import { parseDuration } from '../duration.js';
import { RunbookError, type SourcePos, type ValidationIssue } from '../errors.js';
import type { StepKind, ValidateContext } from '../engine/types.js';
import { getKind, suggestKind } from '../steps/registry.js';
import { parseParams } from './coerce.js';
import { readEnvFile } from './env-file.js';
import { type LoadedRunbook, loadRunbookFile } from './load.js';
import { type Check, type DatabaseConfig, type Runbook, RunbookSpec, type Step } from './schema.js';
import { Redactor } from '../journal/redact.js';
import { EXPR, lookup, refsIn, render, type Scope, TemplateError } from './template.js';
import { type VarOrigin, varOrigins } from './var-file.js';

// C0 controls but tab/newline/CR, DEL, C1, zero-width and bidirectional overrides/isolates, BOM.
const HIDDEN =
  /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/u;

export interface PrepareOptions {
  /** --var key=value overrides of params. */
  vars?: Record<string, string>;
  /** Base environment (defaults to process.env). */
  env?: Record<string, string | undefined>;
  /** Where each var came from (argv, a var file and its mode); defaults to what the CLI recorded. */
  varOrigins?: ReadonlyMap<string, VarOrigin>;
  /** validate: unresolved ${env.X} and missing secrets are warnings; plan/run: errors. */
  envStrict?: boolean;
}

export interface PreparedRunbook {
  loaded: LoadedRunbook;
  runbook: Runbook;
  warnings: ValidationIssue[];
  params: Record<string, unknown>;
  env: Record<string, string | undefined>;
  /** Values to redact everywhere (secret refs, secret params). */
  secrets: string[];
  databases: Record<string, DatabaseConfig>;
  budgetMs: number | undefined;
}

type Path = (string | number)[];

export function prepareRunbookFile(file: string, opts: PrepareOptions = {}): PreparedRunbook {
  return prepareRunbook(loadRunbookFile(file), opts);
}

export function prepareRunbook(loaded: LoadedRunbook, opts: PrepareOptions = {}): PreparedRunbook {
  const issues: ValidationIssue[] = [...loaded.yamlIssues];
  let secrets: Iterable<string> = [];
  const fail = (): never => {
    // An error message may quote a value (an expression, a path): never a secret one.
    const r = new Redactor(secrets);
    throw new RunbookError(sortIssues(issues.map((i) => ({ ...i, message: r.text(i.message) }))));
  };
  if (issues.some((i) => i.severity === 'error')) fail();
  if (loaded.data === null || typeof loaded.data !== 'object' || Array.isArray(loaded.data)) {
    issues.push({
      pos: loaded.pos([]),
      message: 'a runbook is a YAML mapping (version, name, steps...)',
      severity: 'error',
    });
    fail();
  }

  const parsed = RunbookSpec.safeParse(loaded.data);
  if (!parsed.success) {
    issues.push(...zodIssues(parsed.error, [], loaded));
    fail();
  }
  const rb = parsed.data as Runbook;
  const v = new Validator(loaded, rb, opts, issues);
  secrets = v.secrets;
  v.run();
  if (issues.some((i) => i.severity === 'error')) fail();
  return {
    loaded,
    runbook: rb,
    warnings: sortIssues(issues.filter((i) => i.severity === 'warning')),
    params: v.params,
    env: v.env,
    secrets: [...v.secrets].filter((s) => s.length >= 3),
    databases: v.databases,
    budgetMs: rb.maintenance ? parseDuration(rb.maintenance.budget) : undefined,
  };
}

function sortIssues(issues: ValidationIssue[]): ValidationIssue[] {
  return [...issues].sort((a, b) => a.pos.line - b.pos.line || a.pos.col - b.pos.col);
}

export function zodIssues(err: z.ZodError, base: Path, loaded: LoadedRunbook): ValidationIssue[] {
  return err.issues.map((iss) => {
    const path = [...base, ...(iss.path as Path)];
    const where = path.length ? `${pathText(path)}: ` : '';
    if (iss.code === 'unrecognized_keys') {
      const key = (iss as { keys: string[] }).keys[0]!;
      return {
        pos: loaded.pos([...path, key], 'key'),
        message: `${where}unknown key "${key}"${(iss as { keys: string[] }).keys.length > 1 ? ` (and ${(iss as { keys: string[] }).keys.length - 1} more)` : ''}`,
        severity: 'error' as const,
      };
    }
    let message = iss.message;
    // A missing key fails a literal or enum as "expected 1": say what is wrong instead.
    if (
      (iss.code === 'invalid_type' && /received undefined/.test(message)) ||
      (path.length && !hasPath(loaded.data, path) && hasPath(loaded.data, path.slice(0, -1)))
    )
      message = 'required';
    if (iss.code === 'invalid_union') message = unionMessage(iss) ?? message;
    return { pos: loaded.pos(path), message: `${where}${message}`, severity: 'error' as const };
  });
}

function hasPath(data: unknown, path: Path): boolean {
  let cur = data;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, k)) return false;
    cur = (cur as Record<string | number, unknown>)[k];
  }
  return true;
}

function unionMessage(iss: z.core.$ZodIssue): string | undefined {
  const errors = (iss as { errors?: z.core.$ZodIssue[][] }).errors;
  if (!errors?.length) return undefined;
  // Show the branch that got furthest: its first issue is usually the real mistake.
  const best = [...errors].sort((a, b) => (b[0]?.path.length ?? 0) - (a[0]?.path.length ?? 0))[0]?.[0];
  if (!best) return undefined;
  return best.path.length ? `${pathText(best.path as Path)}: ${best.message}` : best.message;
}

export function pathText(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i ? `.${p}` : p)).join('');
}

class Validator {
  params: Record<string, unknown> = {};
  env: Record<string, string | undefined> = {};
  secrets = new Set<string>();
  databases: Record<string, DatabaseConfig> = {};
  private readonly stepIndex = new Map<string, number>();

  constructor(
    private readonly loaded: LoadedRunbook,
    private readonly rb: Runbook,
    private readonly opts: PrepareOptions,
    private readonly issues: ValidationIssue[],
  ) {}

  private issue(
    path: Path,
    message: string,
    severity: 'error' | 'warning' = 'error',
    which?: 'key' | 'value',
  ) {
    this.issues.push({ pos: this.loaded.pos(path, which), message, severity });
  }

  private get envSeverity(): 'error' | 'warning' {
    return this.opts.envStrict ? 'error' : 'warning';
  }

  run() {
    this.loadEnv();
    this.loadParams();
    this.renderAws();
    this.loadDatabases();
    this.checkSteps();
    this.headerSecrets();
    this.checkMaintenance();
    this.checkRehearsal();
    if (this.missingEnvFile)
      this.issue(
        ['envFiles', this.missingEnvFile.index],
        this.quietEnvRefs
          ? `${this.missingEnvFile.text}; ${this.quietEnvRefs} \${env.X} reference(s) unresolved${this.envSeverity === 'warning' ? ' (checked again by plan and run)' : ''}`
          : this.missingEnvFile.text,
        this.quietEnvRefs ? this.envSeverity : 'warning',
      );
  }

  /**
   * HTTP headers carry tokens: a { env } / { file } reference's value, and the value of a header
   * named like a credential (Authorization, Cookie, *token*, *api-key*, *secret*), are secrets —
   * redacted in the journal, the report and the terminal. File references become absolute here.
   */
  private headerSecrets() {
    const SENSITIVE = /authorization|cookie|token|api-?key|secret|password/i;
    const walk = (v: unknown, path: Path): void => {
      if (Array.isArray(v)) {
        for (const [i, x] of v.entries()) walk(x, [...path, i]);
        return;
      }
      if (!v || typeof v !== 'object') return;
      const o = v as Record<string, unknown>;
      if (o.headers && typeof o.headers === 'object' && !Array.isArray(o.headers)) {
        const h = o.headers as Record<string, unknown>;
        for (const [name, val] of Object.entries(h)) {
          const at: Path = [...path, 'headers', name];
          if (val && typeof val === 'object') {
            const ref = val as { env?: unknown; file?: unknown };
            if (typeof ref.env === 'string') {
              const s = this.env[ref.env];
              if (s === undefined)
                this.issue(at, `secret environment variable ${ref.env} is not set`, this.envSeverity);
              else this.addSecret(at, s);
            } else if (typeof ref.file === 'string') {
              const file = resolvePath(dirname(this.loaded.file), ref.file);
              try {
                this.addSecret(at, readFileSync(file, 'utf8').replace(/\r?\n$/, ''));
                ref.file = file;
              } catch {
                this.issue(at, `secret file ${ref.file} cannot be read`, this.envSeverity);
              }
            }
          } else if (typeof val === 'string' && SENSITIVE.test(name) && !val.includes('${')) {
            this.issue(
              at,
              `header "${name}" is a credential written in the runbook, which is copied into every run directory: use { env: NAME }, { file: PATH } or "\${env.NAME}"`,
            );
            if (val.length >= 4) this.secrets.add(val); // and never echoed back
          } else if (typeof val === 'string' && SENSITIVE.test(name)) {
            let s: string;
            try {
              s = String(render(val, this.scope()));
            } catch {
              continue; // a step output: only known at run time
            }
            if (s.includes('${')) continue;
            // The whole value and its credential part ("Bearer <token>").
            for (const part of [s, s.split(/\s+/).at(-1) ?? '']) if (part.length >= 4) this.secrets.add(part);
          }
        }
      }
      for (const [k, x] of Object.entries(o)) if (k !== 'headers') walk(x, [...path, k]);
    };
    for (const [i, s] of (this.rb.steps ?? []).entries()) walk(s, ['steps', i]);
  }

  private checkRehearsal() {
    const load = this.rb.rehearsal?.load;
    if (!load) return;
    const known = Object.keys(this.rb.databases ?? {});
    for (const key of ['database', 'setupOn', 'verifyOn'] as const) {
      if (!known.includes(load[key]))
        this.issue(
          ['rehearsal', 'load', key],
          `unknown database "${load[key]}"${known.length ? ` (defined: ${known.join(', ')})` : ' (the runbook has no databases: section)'}`,
        );
    }
  }

  private loadEnv() {
    const base = this.opts.env ?? process.env;
    const fromFiles: Record<string, string> = {};
    (this.rb.envFiles ?? []).forEach((entry, i) => {
      const f = this.literalParams(entry);
      if (!f) return; // a parameter left empty: no file to read (production takes the environment)
      const path = resolvePath(dirname(this.loaded.file), f);
      if (!existsSync(path)) {
        // Only a problem if something it would have set is missing (the environment may set it all).
        this.missingEnvFile ??= {
          index: i,
          text: `env file ${f} not found (${path})${/sandbox/.test(f) ? ' — start it with `cutover sandbox up`' : ''}`,
        };
        this.envFileMissing = true;
        return;
      }
      Object.assign(fromFiles, readEnvFile(path));
    });
    // The process environment wins, as with dotenv: an operator can override one value.
    this.env = { ...fromFiles, ...base };
  }

  /**
   * envFiles may name a parameter (`${params.secretsFile}`) so one runbook reads the sandbox's file in
   * a rehearsal and none in production; only --var values and literal defaults can fill it, since
   * the environment is what the file provides.
   */
  private literalParams(text: string): string {
    return text.replace(/\$\{params\.([A-Za-z0-9_-]+)\}/g, (_, name: string) => {
      const spec = this.rb.params?.[name];
      const def = spec !== null && typeof spec === 'object' && !Array.isArray(spec) ? spec.default : spec;
      const value = this.opts.vars?.[name] ?? def;
      return typeof value === 'string' && !value.includes('${') ? value : '';
    });
  }

  private scope(): Scope {
    return { params: this.params, env: this.env, steps: {} };
  }

  private loadParams() {
    const vars = { ...this.opts.vars };
    for (const [name, spec] of Object.entries(this.rb.params ?? {})) {
      const isObj = spec !== null && typeof spec === 'object' && !Array.isArray(spec);
      const def = isObj ? spec.default : spec;
      let value: unknown = def;
      const fromVar = name in vars;
      if (fromVar) {
        const raw = vars[name]!;
        value = Array.isArray(def)
          ? raw
              .split(',')
              .map((x) => x.trim())
              .filter(Boolean)
          : typeof def === 'number' && raw.trim() !== '' && !Number.isNaN(Number(raw))
            ? Number(raw)
            : typeof def === 'boolean' && (raw === 'true' || raw === 'false')
              ? raw === 'true'
              : raw;
        delete vars[name];
      }
      if (value === undefined) {
        this.issue(['params', name], `parameter "${name}" has no default: pass --var ${name}=VALUE`);
        continue;
      }
      // Only the runbook's own defaults are templates: a --var value (maybe from a less trusted
      // source) stays the literal text it is, so it cannot read the environment.
      let unresolved = false;
      if (!fromVar && typeof value === 'string' && value.includes('${')) {
        try {
          value = render(value, this.scope());
        } catch (e) {
          unresolved = true;
          this.templateIssue(['params', name], e);
        }
      }
      this.params[name] = value;
      if (isObj && spec.secret && fromVar) this.checkVarOrigin(name);
      const literal = !fromVar && !(typeof def === 'string' && def.includes('${'));
      if (isObj && spec.secret && literal && value !== undefined && String(value) !== '')
        this.refuseLiteralSecret(
          ['params', name, 'default'],
          `secret parameter "${name}": a default written in the runbook is copied into every run directory; use default: "\${env.NAME}", a secrets file in envFiles, or --var-file`,
          ['params', name],
        );
      if (isObj && spec.secret && value !== undefined && !unresolved)
        this.addSecret(['params', name], String(value));
    }
    for (const name of Object.keys(vars)) {
      const known = Object.keys(this.rb.params ?? {});
      this.issue(
        ['params'],
        `--var ${name}: the runbook has no parameter "${name}"${known.length ? ` (it has: ${known.join(', ')})` : ''}`,
        'error',
        'key',
      );
    }
  }

  /** A secret --var on argv is in `ps` for every local user; in a file others can read, it is theirs too. */
  private checkVarOrigin(name: string) {
    const origin = (this.opts.varOrigins ?? varOrigins).get(name);
    if (!origin) return;
    if ('argv' in origin)
      this.issue(
        ['params', name],
        `secret parameter "${name}" given with --var: the command line is visible to every local user (ps); put ${name}=... in a file only you can read (chmod 600) and pass --var-file FILE`,
        'error',
        'key',
      );
    else if (origin.mode & 0o077)
      this.issue(
        ['params', name],
        `secret parameter "${name}" comes from ${origin.file}, which group or others can access (mode ${origin.mode.toString(8).padStart(3, '0')}): chmod 600 ${origin.file}`,
        'error',
        'key',
      );
  }

  /** Unset ${env.X} while an env file is missing: one summary line instead of one per reference. */
  private quietEnvRefs = 0;
  private missingEnvFile: { index: number; text: string } | undefined;
  private envFileMissing = false;

  private templateIssue(path: Path, e: unknown, severityForEnv = this.envSeverity) {
    if (e instanceof TemplateError) {
      if (e.ref.ns === 'env' && this.envFileMissing) {
        this.quietEnvRefs++;
        return;
      }
      this.issue(path, e.message, e.ref.ns === 'env' ? severityForEnv : 'error');
    } else throw e;
  }

  /**
   * A secret is redacted wherever it appears; one of 1–3 characters would turn every matching
   * substring (ids, paths, numbers) into *** — or, unredacted, leak: refused. The value is never printed.
   */
  private addSecret(path: Path, val: string): void {
    if (this.literalSecretAt.has(pathText(path))) {
      // Already refused as written in the runbook.
    } else if (val.length > 0 && val.length < 4)
      this.issue(
        path,
        `this secret is ${val.length} character${val.length > 1 ? 's' : ''} long: too short to redact safely (use 4 or more)`,
      );
    else if (val.length) {
      // The runbook is copied byte for byte into every run directory (rollback rebuilds from it):
      // a secret written in it would sit there unredacted, whichever way it was referenced.
      const at = this.writtenAt(val);
      if (at)
        this.issues.push({
          pos: at,
          message: `a secret's value is written here in the runbook, which is copied into every run directory: keep it in the environment ({ env: NAME } or "\${env.NAME}") or an envFiles secrets file`,
          severity: 'error',
        });
    }
    if (val.length) this.secrets.add(val);
  }

  /** Where a YAML value of the runbook is exactly this secret (a substring of a command or an id is not one). */
  private writtenAt(val: string): SourcePos | undefined {
    let offset: number | undefined;
    visit(this.loaded.doc, {
      Scalar(key, node) {
        if (key === 'key' || String(node.value) !== val) return undefined;
        offset = node.range?.[0] ?? 0;
        return visit.BREAK;
      },
    });
    if (offset === undefined) return undefined;
    const before = this.loaded.text.slice(0, offset);
    return {
      file: this.loaded.file,
      line: before.split('\n').length,
      col: offset - before.lastIndexOf('\n'),
    };
  }

  /** Paths already refused for a literal secret (one line each, not two). */
  private readonly literalSecretAt = new Set<string>();

  private refuseLiteralSecret(path: Path, message: string, secretPath: Path = path): void {
    this.literalSecretAt.add(pathText(secretPath));
    this.issue(path, message);
  }

  private secretValue(path: Path, v: unknown, stringIsSecret = true): string | undefined {
    if (typeof v === 'string') {
      try {
        // "${env.X}" (the string form) is as secret as { env: X }; a literal is redacted too.
        const val = String(render(v, this.scope()));
        if (stringIsSecret) this.addSecret(path, val);
        return val;
      } catch (e) {
        this.templateIssue(path, e);
        return undefined;
      }
    }
    const ref = v as { env?: string; file?: string };
    if (ref.env !== undefined) {
      const val = this.env[ref.env];
      if (val === undefined) {
        if (this.envFileMissing) this.quietEnvRefs++;
        else this.issue(path, `secret environment variable ${ref.env} is not set`, this.envSeverity);
      } else if (stringIsSecret) this.addSecret(path, val);
      else if (val.length >= 3) this.secrets.add(val); // a user name by reference: redacted as before, never refused
      return val;
    }
    const file = resolvePath(dirname(this.loaded.file), ref.file!);
    try {
      const val = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      if (stringIsSecret) this.addSecret(path, val);
      else if (val.length >= 3) this.secrets.add(val);
      return val;
    } catch {
      this.issue(path, `secret file ${ref.file} cannot be read`, this.envSeverity);
      return undefined;
    }
  }

  /** aws: { region: ${params.region} } — settings the engine reads as plain strings. */
  private renderAws() {
    const aws = this.rb.aws;
    if (!aws) return;
    for (const key of ['region', 'profile', 'endpoint'] as const) {
      const v = aws[key];
      if (v === undefined || !v.includes('${')) continue;
      try {
        const out = String(render(v, this.scope()));
        if (out) aws[key] = out;
        else delete aws[key];
      } catch (e) {
        this.templateIssue(['aws', key], e);
      }
    }
  }

  private loadDatabases() {
    for (const [name, db] of Object.entries(this.rb.databases ?? {})) {
      const p: Path = ['databases', name];
      if (typeof db.password === 'string' && db.password && !db.password.includes('${'))
        this.refuseLiteralSecret(
          [...p, 'password'],
          `database "${name}": a password written in the runbook is copied into every run directory; use { env: NAME }, "\${env.NAME}" or a secrets file in envFiles`,
        );
      const str = (key: string, v: unknown) => {
        try {
          return v === undefined ? undefined : String(render(v, this.scope()));
        } catch (e) {
          this.templateIssue([...p, key], e);
          return undefined;
        }
      };
      const port = Number(str('port', db.port) ?? 3306);
      if (!Number.isInteger(port) || port < 1 || port > 65535)
        this.issue([...p, 'port'], `database "${name}": port must be 1-65535`);
      const cfg: DatabaseConfig = {
        name,
        host: str('host', db.host) ?? '',
        port,
        user: this.secretValue([...p, 'user'], db.user, false) ?? '',
        connectTimeoutMs: db.connectTimeout !== undefined ? parseDuration(db.connectTimeout)! : 5000,
      };
      const password =
        db.password === undefined ? undefined : this.secretValue([...p, 'password'], db.password);
      if (password !== undefined) cfg.password = password;
      const database = str('database', db.database);
      if (database !== undefined) cfg.database = database;
      if (db.ssl !== undefined) cfg.ssl = db.ssl;
      if (typeof db.resolvers === 'string') {
        // One expression naming a list parameter keeps its type.
        let list: unknown;
        try {
          list = render(db.resolvers, this.scope());
        } catch (e) {
          this.templateIssue([...p, 'resolvers'], e);
        }
        const arr = Array.isArray(list)
          ? list.map(String)
          : typeof list === 'string' && list
            ? list.split(',')
            : [];
        if (!arr.length)
          this.issue([...p, 'resolvers'], `database "${name}": resolvers must name at least one DNS server`);
        else cfg.resolvers = arr;
      } else if (db.resolvers) cfg.resolvers = db.resolvers.map((r, i) => str(`resolvers.${i}`, r) ?? r);
      this.databases[name] = cfg;
    }
  }

  private checkSteps() {
    const steps = this.rb.steps;
    let pnrAt = -1;
    steps.forEach((step, i) => {
      const p: Path = ['steps', i];
      if (this.stepIndex.has(step.id))
        this.issue(
          [...p, 'id'],
          `duplicate step id "${step.id}" (first used by step ${this.stepIndex.get(step.id)! + 1})`,
        );
      else this.stepIndex.set(step.id, i);

      for (const key of ['timeout', 'undoTimeout', 'retryDelay'] as const) {
        const d = step[key];
        if (d !== undefined && parseDuration(d) === 0)
          this.issue([...p, key], `${key} must be greater than 0`);
      }

      const kind = this.kindOf(step.kind, [...p, 'kind']);
      if (kind) {
        this.checkParams(kind, step.with ?? {}, [...p, 'with'], i);
        if (kind.undoUnsafeAfterNewWrites && pnrAt >= 0)
          this.issue(
            [...p, 'kind'],
            `step "${step.id}" (${step.kind}) cannot be undone safely once the new side takes writes, but it comes after the point of no return "${steps[pnrAt]!.id}": move it before, or move pointOfNoReturn later`,
          );
      }
      for (const phase of ['before', 'after'] as const) {
        (step[phase] ?? []).forEach((check, j) => {
          const cp: Path = [...p, phase, j];
          const ck = this.kindOf(check.kind, [...cp, 'kind']);
          if (!ck) return;
          if (!ck.readOnly)
            this.issue(
              [...cp, 'kind'],
              `${phase} checks must be read-only kinds; ${check.kind} changes things (make it a step)`,
            );
          else {
            this.checkParams(ck, check.with ?? {}, [...cp, 'with'], phase === 'after' ? i + 1 : i);
            this.checkWrites(ck, check, cp, phase);
          }
        });
      }
      if (step.rollback && step.rollback !== 'none') {
        const rk = this.kindOf(step.rollback.kind, [...p, 'rollback', 'kind']);
        if (rk) this.checkParams(rk, step.rollback.with ?? {}, [...p, 'rollback', 'with'], i + 1);
      }
      if (kind && !kind.readOnly && !kind.undo && step.rollback === undefined && !kind.maintenance)
        this.issue(
          [...p, 'kind'],
          `step "${step.id}": ${step.kind} has no undo; add rollback: { kind, with } or rollback: none to say it needs none`,
          'warning',
        );
      if (step.pointOfNoReturn && pnrAt < 0) pnrAt = i;
    });
  }

  /**
   * A check that writes (mysql.replica-lag's heartbeat) runs only when the runbook says it knows:
   * `writes: <tag>` on the check. A `writes:` on a check that writes nothing is a mistake too.
   */
  private checkWrites(ck: StepKind, check: Check, cp: Path, phase: 'before' | 'after'): void {
    const w = ck.writes;
    if (!w) {
      if (check.writes !== undefined)
        this.issue([...cp, 'writes'], `${check.kind} writes nothing: remove writes: ${check.writes}`);
      return;
    }
    if (check.writes !== undefined && check.writes !== w.tag) {
      this.issue(
        [...cp, 'writes'],
        `${check.kind} writes "${w.tag}", not "${check.writes}": write writes: ${w.tag}`,
      );
      return;
    }
    if (check.writes === w.tag) return;
    const parsed = ck.params.safeParse(check.with ?? {});
    // Params that do not parse are reported by checkParams; a template left unresolved may write.
    const what = parsed.success ? w.describe(parsed.data) : w.summary;
    if (what === undefined) return;
    this.issue(
      [...cp, 'kind'],
      `this ${phase} check is not read-only: ${check.kind} ${what} — add \`writes: ${w.tag}\` to the check to run it knowingly (or make it a step)`,
    );
  }

  private kindOf(name: string, path: Path): StepKind | undefined {
    const k = getKind(name);
    if (!k) {
      const hint = suggestKind(name);
      this.issue(
        path,
        `unknown step kind "${name}"${hint ? ` — did you mean "${hint}"?` : ''} (see \`cutover kinds\`)`,
      );
    }
    return k;
  }

  /** Renders params/env now (steps outputs stay symbolic) and validates against the kind's schema. */
  /** Text no command or value should carry: invisible, bidirectional or control characters, and `${` left open. */
  private checkText(v: string, path: Path): void {
    const bad = HIDDEN.exec(v);
    if (bad)
      this.issue(
        path,
        `contains an invisible or control character (U+${bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}): what runs would not be what is shown`,
      );
    const rest = v.replace(EXPR, '');
    const open = rest.indexOf('${');
    const alien = open >= 0 ? /^\$\{[^}]*?([^\x00-\x7f])[^}]*\}/u.exec(rest.slice(open)) : null;
    if (alien)
      this.issue(
        path,
        `${alien[0]} is not a reference: names are ASCII, and U+${alien[1]!.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')} only looks like a letter`,
      );
    else if (open >= 0)
      this.issue(
        path,
        `unclosed or malformed \${...}: ${JSON.stringify(v.replace(EXPR, '').slice(open, open + 20))} (write $\${ for a literal \${)`,
      );
  }

  private checkParams(kind: StepKind, withRaw: Record<string, unknown>, base: Path, stepPos: number) {
    // A value templated into SQL text can change the statement (a --var or a step output with a
    // quote in it): values go in as bound ? parameters.
    if (kind.kind === 'mysql.query' || kind.kind === 'mysql.exec')
      for (const [field, list] of [
        ['sql', 'params'],
        ['undo', 'undoParams'],
      ] as const) {
        const text = withRaw[field];
        const ref = typeof text === 'string' ? refsIn(text)[0] : undefined;
        if (ref)
          this.issue(
            [...base, field],
            `${ref.text} inside SQL text could change the statement: write ? there and pass the value in ${list}: ["${ref.text}"]`,
          );
      }
    const symbolic = new Set<string>();
    const visit = (v: unknown, path: Path): unknown => {
      if (typeof v === 'string') {
        this.checkText(v, path);
        for (const ref of refsIn(v)) {
          if (ref.ns === 'steps') this.checkStepRef(ref.path, ref.text, path, stepPos);
          else {
            try {
              lookup(ref, this.scope());
            } catch (e) {
              this.templateIssue(path, e);
            }
          }
        }
        if (refsIn(v).some((r) => r.ns === 'steps') || v.includes('${')) {
          try {
            const out = render(v, { ...this.scope(), steps: this.symbolicSteps() });
            // Step outputs, and params still holding an unset ${env.X}, are only known at run time.
            if (refsIn(v).some((r) => r.ns === 'steps') || (typeof out === 'string' && out.includes('${')))
              symbolic.add(pathText(path));
            return out;
          } catch {
            symbolic.add(pathText(path));
            return v;
          }
        }
        return v;
      }
      if (Array.isArray(v)) return v.map((x, i) => visit(x, [...path, i]));
      if (v && typeof v === 'object')
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, visit(x, [...path, k])]));
      return v;
    };
    const rendered = visit(withRaw, base) as Record<string, unknown>;
    const parsed = parseParams(kind.params, rendered);
    if (!parsed.success) {
      for (const iss of zodIssues(parsed.error, base, this.loaded)) {
        // A value that only exists at run time (a step output) is checked again then.
        const full = iss.message.split(':')[0]!;
        if ([...symbolic].some((s) => full.startsWith(s))) continue;
        this.issues.push({ ...iss, message: `${iss.message}` });
      }
      return;
    }
    const ctx: ValidateContext = {
      pos: (path) => this.loaded.pos([...base, ...path]),
      issue: (path, message, severity = 'error') => this.issue([...base, ...path], message, severity),
      databases: new Set(Object.keys(this.rb.databases ?? {})),
      budgetMs: this.rb.maintenance ? parseDuration(this.rb.maintenance.budget) : undefined,
    };
    for (const db of kind.databases?.(parsed.data) ?? []) {
      if (!ctx.databases.has(db)) {
        const known = [...ctx.databases];
        this.issue(
          this.findValuePath(withRaw, base, db) ?? base,
          `unknown database "${db}"${known.length ? ` (defined: ${known.join(', ')})` : ' (the runbook has no databases: section)'}`,
        );
      }
    }
    kind.validate?.(parsed.data, ctx);
  }

  private symbolicSteps(): Scope['steps'] {
    // At validation time outputs are unknown: stand-ins keep the shape without a value.
    const proxy = new Proxy(
      {},
      {
        get: (_t, k) => (typeof k === 'string' ? `<${k}>` : undefined),
        has: () => true,
        // Template lookups take own properties only (template.ts): every name is one here.
        getOwnPropertyDescriptor: (_t, k) =>
          typeof k === 'string'
            ? { value: `<${k}>`, configurable: true, enumerable: true, writable: false }
            : undefined,
      },
    );
    return Object.fromEntries(
      [...this.stepIndex.keys()].map((id) => [id, { outputs: proxy as Record<string, unknown> }]),
    );
  }

  private findValuePath(v: unknown, base: Path, needle: string): Path | undefined {
    if (v === needle) return base;
    if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        const found = this.findValuePath(x, [...base, Array.isArray(v) ? Number(k) : k], needle);
        if (found) return found;
      }
    }
    return undefined;
  }

  private checkStepRef(path: string[], text: string, where: Path, stepPos: number) {
    const [id, outputs, name] = path;
    const idx = this.stepIndex.get(id!);
    const target = idx === undefined ? this.rb.steps.findIndex((s) => s.id === id) : idx;
    if (target < 0) return this.issue(where, `${text}: no step "${id}"`);
    if (target >= stepPos)
      return this.issue(where, `${text}: step "${id}" runs later; only earlier steps' outputs exist here`);
    if (outputs !== 'outputs' || !name)
      return this.issue(where, `${text}: use \${steps.${id}.outputs.<name>}`);
    const kind = getKind(this.rb.steps[target]!.kind);
    if (kind && !kind.outputs?.includes(name))
      this.issue(
        where,
        `${text}: ${kind.kind} has no output "${name}"${kind.outputs?.length ? ` (it has: ${kind.outputs.join(', ')})` : ' (it has none)'}`,
      );
  }

  private checkMaintenance() {
    const steps = this.rb.steps;
    const kindOf = (s: Step) => getKind(s.kind)?.maintenance;
    const enter = steps.findIndex((s) => kindOf(s) === 'enter');
    const exit = steps.findIndex((s) => kindOf(s) === 'exit');
    if (this.rb.maintenance && enter < 0)
      this.issue(
        ['maintenance'],
        'a maintenance budget is set but no step enters maintenance (maintenance.enter)',
        'warning',
      );
    if (enter >= 0 && exit < 0)
      this.issue(
        ['steps', enter, 'kind'],
        'this step enters maintenance but no later step exits it (maintenance.exit)',
        'warning',
      );
    if (enter >= 0 && exit >= 0 && exit < enter)
      this.issue(['steps', exit, 'kind'], 'maintenance is exited before it is entered');
  }
}

export function issueText(i: ValidationIssue): string {
  return `${i.pos.file}:${i.pos.line}:${i.pos.col} ${i.message}`;
}

export type { SourcePos };
