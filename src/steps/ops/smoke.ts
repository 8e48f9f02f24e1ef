// smoke.test: the checks the team in the field report wanted at 10:32 and could not run. HTTP checks
// (status, body, JSON path, latency; through the maintenance bypass when one is given) and SQL
// checks: a canary row written through the application's DNS name with the application's account,
// read back where it must land (the new primary), and always removed afterwards; queries with
// expected values; and queries compared between two databases (row counts old vs new). Every check
// runs, every result goes into the outputs (so into the journal), and the step fails listing every
// check that did not pass.
import { z } from 'zod';
import { connectMysql, isReadStatement, type MysqlAdapter, mysqlAdapter } from '../../adapters/mysql.js';
import { parseDuration } from '../../duration.js';
import { errorMessage, formatMs, StepError } from '../../errors.js';
import { defineKind, type StepContext } from '../../engine/types.js';
import { Duration } from '../../runbook/schema.js';
import { checkHttp, HttpExpectation } from '../generic/http-check.js';
import { randomHex, sha256Hex } from '../../util/digest.js';
import { resolveValue, ValueOrEnv } from './common.js';

export const DEFAULT_CANARY_TABLE = 'cutover_smoke_canary';
const TABLE_RE = /^(?:[A-Za-z0-9_$]+\.)?[A-Za-z0-9_$]+$/;

const SmokeBypass = z.lazy(() =>
  z
    .object({
      header: z
        .object({ name: z.string().min(1), value: ValueOrEnv })
        .strict()
        .optional(),
      localAddress: z.string().min(1).optional().describe('a source address inside the bypass CIDR'),
    })
    .strict(),
);

const HttpSmoke = z.lazy(() =>
  HttpExpectation.unwrap()
    .extend({
      name: z.string().optional(),
      bypass: z
        .boolean()
        .optional()
        .describe('send this check through the step’s bypass (default true when a bypass is given)'),
    })
    .strict(),
);

const Canary = z.lazy(() =>
  z
    .object({
      on: z.string().describe('database to write through: the application’s DNS name and account'),
      readOn: z
        .string()
        .optional()
        .describe('database to read the row back from, e.g. the new primary directly (default: on)'),
      setupOn: z
        .string()
        .optional()
        .describe(
          'database where the canary table is created and dropped, with an account allowed to (default: on)',
        ),
      mustReach: z
        .string()
        .optional()
        .describe('database whose server the write must land on (e.g. new): proves the DNS name leads there'),
      table: z
        .string()
        .regex(TABLE_RE)
        .optional()
        .describe(`canary table, [schema.]name (default ${DEFAULT_CANARY_TABLE})`),
      readTimeout: Duration.optional().describe(
        'how long the row may take to show up on readOn (default 5s)',
      ),
    })
    .strict(),
);

const Query = z.lazy(() =>
  z
    .object({
      name: z.string().optional(),
      on: z.string(),
      sql: z.string().min(1).describe('a read-only statement'),
      expect: z
        .object({
          rows: z.number().int().min(0).optional().describe('number of rows'),
          equals: z
            .union([z.string(), z.number(), z.boolean(), z.null()])
            .optional()
            .describe('value of the first column of the first row'),
          min: z.number().optional(),
          max: z.number().optional(),
        })
        .strict()
        .optional(),
    })
    .strict(),
);

const Compare = z.lazy(() =>
  z
    .object({
      name: z.string().optional(),
      on: z.tuple([z.string(), z.string()]).describe('the two databases, e.g. [old, new]'),
      sql: z.string().min(1).optional().describe('a read-only statement run on both'),
      table: z.string().regex(TABLE_RE).optional().describe('shorthand for SELECT COUNT(*) FROM table'),
      tolerance: z.number().min(0).optional().describe('allowed difference when both answer one number'),
    })
    .strict(),
);

const Params = z.lazy(() =>
  z
    .object({
      http: z.array(HttpSmoke).optional(),
      bypass: SmokeBypass.optional().describe('maintenance bypass applied to the HTTP checks'),
      canary: Canary.optional(),
      queries: z.array(Query).optional(),
      compare: z.array(Compare).optional(),
    })
    .strict(),
);
type P = z.infer<typeof Params>;

export interface SmokeSnapshot {
  /** Journaled before the write: which row this step writes, and whether the table was there. */
  canaryId?: string;
  table?: string;
  tableExisted?: boolean;
}

interface HttpOut {
  name: string;
  url: string;
  status: number | null;
  latencyMs: number;
  ok: boolean;
  problems: string[];
}
interface CanaryOut {
  id: string;
  table: string;
  written: boolean;
  wroteTo?: string;
  readOn: string;
  readBack: boolean;
  readBackMs?: number;
  cleanedUp: boolean;
  tableDropped: boolean;
  ok: boolean;
  problems: string[];
}
interface QueryOut {
  name: string;
  on: string;
  rows: number;
  value: unknown;
  ok: boolean;
  problems: string[];
}
interface CompareOut {
  name: string;
  on: [string, string];
  left: unknown;
  right: unknown;
  ok: boolean;
  problems: string[];
}
type Outputs = {
  passed: boolean;
  http: HttpOut[];
  canary?: CanaryOut;
  queries: QueryOut[];
  compare: CompareOut[];
};

// ---------------------------------------------------------------- helpers

export function quoteTable(t: string): string {
  return t
    .split('.')
    .map((x) => `\`${x}\``)
    .join('.');
}

function splitTable(t: string): { schema: string | null; name: string } {
  const i = t.indexOf('.');
  return i < 0 ? { schema: null, name: t } : { schema: t.slice(0, i), name: t.slice(i + 1) };
}

/** First cell of the first row, as the server wrote it. */
function firstCell(rows: Record<string, unknown>[]): unknown {
  const r = rows[0];
  return r ? Object.values(r)[0] : undefined;
}

function asNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

/** Results compared as the rows' values; a multi-row result is summarized, not copied (it may hold data). */
export function summarize(rows: Record<string, unknown>[]): unknown {
  if (rows.length === 1 && Object.keys(rows[0]!).length === 1) return firstCell(rows);
  const digest = sha256Hex(JSON.stringify(rows.map((r) => Object.values(r).map(String))));
  return { rows: rows.length, sha256: digest.slice(0, 16) };
}

export function compareResults(
  a: Record<string, unknown>[],
  b: Record<string, unknown>[],
  tolerance?: number,
): string | undefined {
  const single = (rows: Record<string, unknown>[]) => rows.length === 1 && Object.keys(rows[0]!).length === 1;
  if (single(a) && single(b)) {
    const x = asNumber(firstCell(a));
    const y = asNumber(firstCell(b));
    if (x !== undefined && y !== undefined) {
      const diff = Math.abs(x - y);
      return diff <= (tolerance ?? 0)
        ? undefined
        : `${x} vs ${y} (difference ${diff}${tolerance ? `, tolerance ${tolerance}` : ''})`;
    }
  }
  const ja = JSON.stringify(a.map((r) => Object.values(r).map(String)));
  const jb = JSON.stringify(b.map((r) => Object.values(r).map(String)));
  if (ja === jb) return undefined;
  return a.length !== b.length ? `${a.length} rows vs ${b.length} rows` : 'the results differ';
}

export function queryProblems(
  rows: Record<string, unknown>[],
  expect: z.infer<typeof Query>['expect'],
): string[] {
  if (!expect) return [];
  const out: string[] = [];
  const v = firstCell(rows);
  if (expect.rows !== undefined && rows.length !== expect.rows)
    out.push(`${rows.length} rows, expected ${expect.rows}`);
  if (expect.equals !== undefined) {
    const same =
      expect.equals === null
        ? v === null
        : v !== undefined && v !== null && String(v) === String(expect.equals);
    if (!same) out.push(`value ${JSON.stringify(v ?? null)}, expected ${JSON.stringify(expect.equals)}`);
  }
  const n = asNumber(v);
  if (expect.min !== undefined && (n === undefined || n < expect.min))
    out.push(`value ${JSON.stringify(v ?? null)}, expected ≥ ${expect.min}`);
  if (expect.max !== undefined && (n === undefined || n > expect.max))
    out.push(`value ${JSON.stringify(v ?? null)}, expected ≤ ${expect.max}`);
  return out;
}

function canaryTable(p: P): string {
  return p.canary?.table ?? DEFAULT_CANARY_TABLE;
}

/** A fresh connection resolving the name now, as a new application connection would. */
async function freshConnection(ctx: StepContext, name: string): Promise<MysqlAdapter> {
  const env = ctx.adapters.env;
  return connectMysql(ctx.database(name), ctx.adapters.mode, {
    countRead: (op) => env.countRead(op),
    countWrite: (op) => env.countWrite(op),
    record: (c) => env.record(c),
  });
}

async function tableExists(db: MysqlAdapter, table: string): Promise<boolean> {
  const { schema, name } = splitTable(table);
  const rows = await db.query<{ n: unknown; s: unknown }>(
    'SELECT COUNT(*) AS n, COALESCE(?, DATABASE()) AS s FROM information_schema.TABLES WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?',
    [schema, schema, name],
    { op: 'canary-table' },
  );
  if (rows[0]?.s === null || rows[0]?.s === undefined)
    throw new StepError(
      'CANARY_NO_SCHEMA',
      `${db.label}: no default schema for the canary table: set databases.${db.name}.database or canary.table: schema.${name}`,
    );
  return Number(rows[0]?.n ?? 0) > 0;
}

const CREATE = (t: string) =>
  `CREATE TABLE IF NOT EXISTS ${quoteTable(t)} (id VARCHAR(100) NOT NULL PRIMARY KEY, run_id VARCHAR(100) NOT NULL, step_id VARCHAR(100) NOT NULL, written_at DATETIME(6) NOT NULL)`;

// ---------------------------------------------------------------- the checks

async function runHttp(ctx: StepContext, p: P): Promise<HttpOut[]> {
  const out: HttpOut[] = [];
  const env = ctx.adapters.env.env;
  for (const [i, c] of (p.http ?? []).entries()) {
    const { name, bypass, ...e } = c;
    const viaBypass = p.bypass && bypass !== false;
    const headers = { ...e.headers };
    if (viaBypass && p.bypass?.header)
      headers[p.bypass.header.name] = resolveValue(p.bypass.header.value, env, 'bypass header');
    const req = {
      ...e,
      headers,
      ...(viaBypass && p.bypass?.localAddress && !e.localAddress
        ? { localAddress: p.bypass.localAddress }
        : {}),
    };
    const label = name ?? `http[${i}]`;
    try {
      const r = await checkHttp(ctx.adapters.http, req, ctx.signal, ctx.adapters.env.env);
      out.push({
        name: label,
        url: c.url,
        status: r.status,
        latencyMs: r.latencyMs,
        ok: r.ok,
        problems: r.problems,
      });
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      out.push({
        name: label,
        url: c.url,
        status: null,
        latencyMs: 0,
        ok: false,
        problems: [errorMessage(err)],
      });
    }
  }
  return out;
}

async function runCanary(ctx: StepContext, p: P, snap: SmokeSnapshot): Promise<CanaryOut> {
  const c = p.canary!;
  const table = snap.table ?? canaryTable(p);
  const id = snap.canaryId ?? newCanaryId(ctx);
  const readOn = c.readOn ?? c.on;
  const out: CanaryOut = {
    id,
    table,
    written: false,
    readOn,
    readBack: false,
    cleanedUp: false,
    tableDropped: false,
    ok: false,
    problems: [],
  };
  const setup = await ctx.adapters.use(mysqlAdapter, c.setupOn ?? c.on);
  let created = false;
  let writer: MysqlAdapter | undefined;
  const mine = [ctx.runId.slice(0, 100), ctx.stepId.slice(0, 100)];
  try {
    if (!snap.tableExisted) {
      const r = await setup.exec(CREATE(table), [], {
        action: 'create',
        target: `canary table ${table} on ${setup.label}`,
      });
      created = r.applied;
    }
    writer = await freshConnection(ctx, c.on);
    out.wroteTo = `${writer.label} = server_id ${writer.server.serverId} (${writer.server.hostname}:${writer.server.port})`;
    if (c.mustReach) {
      const expected = await ctx.adapters.use(mysqlAdapter, c.mustReach);
      if (expected.server.key !== writer.server.key)
        out.problems.push(
          `the write through ${c.on} reached server_id ${writer.server.serverId} (${writer.server.hostname}), not ${c.mustReach} (server_id ${expected.server.serverId}) — check the DNS name`,
        );
    }
    if (snap.tableExisted)
      // A retried or resumed attempt: the row of the attempt before, if its cleanup never ran.
      await writer.exec(`DELETE FROM ${quoteTable(table)} WHERE id = ?`, [id], {
        action: 'delete',
        target: `earlier canary row from ${table}`,
        detail: id,
      });
    const ins = await writer.exec(
      `INSERT INTO ${quoteTable(table)} (id, run_id, step_id, written_at) VALUES (?, ?, ?, UTC_TIMESTAMP(6))`,
      [id, ...mine],
      { action: 'insert', target: `canary row into ${table} on ${writer.label}`, detail: id },
      { op: 'canary-insert' },
    );
    out.written = ins.applied;
    // A write that was only recorded (plan) has nothing to read back.
    if (ins.applied) {
      const reader = readOn === c.on ? writer : await ctx.adapters.use(mysqlAdapter, readOn);
      const timeoutMs = c.readTimeout !== undefined ? parseDuration(c.readTimeout)! : 5000;
      const t0 = performance.now();
      const deadline = Date.now() + timeoutMs;
      let noTable = false;
      for (;;) {
        let rows: unknown[] = [];
        try {
          rows = await reader.query(`SELECT id FROM ${quoteTable(table)} WHERE id = ?`, [id], {
            op: 'canary-read',
          });
          noTable = false;
        } catch (e) {
          // The table itself may not have replicated there (yet): the row is not there either.
          if ((e as StepError).details?.mysqlCode !== 'ER_NO_SUCH_TABLE') throw e;
          noTable = true;
        }
        if (rows.length) {
          out.readBack = true;
          out.readBackMs = Math.round(performance.now() - t0);
          break;
        }
        if (Date.now() >= deadline) {
          out.problems.push(
            `canary row not found on ${reader.label} within ${formatMs(timeoutMs)}${noTable ? ' (nor its table)' : ''} — the write did not reach it`,
          );
          break;
        }
        await ctx.sleep(50);
      }
    }
  } catch (e) {
    if (ctx.signal.aborted) throw e;
    out.problems.push(errorMessage(e));
  } finally {
    // Always: the row (and the table, if this step made it) must not outlive the check.
    try {
      if (out.written && writer) {
        // By run and step: also takes the rows of an earlier attempt that died before its cleanup.
        await writer.exec(`DELETE FROM ${quoteTable(table)} WHERE run_id = ? AND step_id = ?`, mine, {
          action: 'delete',
          target: `canary row from ${table}`,
          detail: id,
        });
        const left = await writer.query<{ n: unknown }>(
          `SELECT COUNT(*) AS n FROM ${quoteTable(table)} WHERE run_id = ? AND step_id = ?`,
          mine,
        );
        out.cleanedUp = Number(left[0]?.n ?? 0) === 0;
      } else out.cleanedUp = !out.written;
      if (created) {
        await setup.exec(`DROP TABLE IF EXISTS ${quoteTable(table)}`, [], {
          action: 'drop',
          target: `canary table ${table} on ${setup.label}`,
        });
        out.tableDropped = true;
      }
    } catch (e) {
      ctx.warn(`canary cleanup: ${errorMessage(e)} — remove row ${id} from ${table} by hand`);
    }
    await writer?.close().catch(() => {});
  }
  out.ok = out.problems.length === 0;
  return out;
}

function newCanaryId(ctx: StepContext): string {
  return `${ctx.runId}/${ctx.stepId}/${randomHex(4)}`.slice(-100);
}

async function runQueries(ctx: StepContext, p: P): Promise<QueryOut[]> {
  const out: QueryOut[] = [];
  for (const [i, q] of (p.queries ?? []).entries()) {
    const name = q.name ?? `queries[${i}]`;
    try {
      const db = await ctx.adapters.use(mysqlAdapter, q.on);
      const rows = await db.query(q.sql, [], { op: 'smoke-query', signal: ctx.signal });
      const problems = queryProblems(rows, q.expect);
      out.push({
        name,
        on: q.on,
        rows: rows.length,
        value: summarize(rows) ?? null,
        ok: !problems.length,
        problems,
      });
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      out.push({ name, on: q.on, rows: 0, value: null, ok: false, problems: [errorMessage(e)] });
    }
  }
  return out;
}

async function runCompare(ctx: StepContext, p: P): Promise<CompareOut[]> {
  const out: CompareOut[] = [];
  for (const [i, c] of (p.compare ?? []).entries()) {
    const sql = c.sql ?? `SELECT COUNT(*) AS n FROM ${quoteTable(c.table ?? '')}`;
    const name = c.name ?? (c.table ? `rows in ${c.table}` : `compare[${i}]`);
    try {
      const [a, b] = await Promise.all(
        c.on.map(async (d) =>
          (await ctx.adapters.use(mysqlAdapter, d)).query(sql, [], {
            op: 'smoke-compare',
            signal: ctx.signal,
          }),
        ),
      );
      const diff = compareResults(a!, b!, c.tolerance);
      out.push({
        name,
        on: c.on,
        left: summarize(a!) ?? null,
        right: summarize(b!) ?? null,
        ok: !diff,
        problems: diff ? [`${c.on[0]} vs ${c.on[1]}: ${diff}`] : [],
      });
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      out.push({ name, on: c.on, left: null, right: null, ok: false, problems: [errorMessage(e)] });
    }
  }
  return out;
}

export const smokeTest = defineKind<P, SmokeSnapshot, Outputs>({
  kind: 'smoke.test',
  summary:
    'HTTP checks (through the maintenance bypass) and SQL checks: canary write and read-back, queries, old vs new comparisons',
  params: Params,
  outputs: ['passed', 'http', 'canary', 'queries', 'compare'],
  databases(p) {
    const c = p.canary;
    return [
      ...(c ? [c.on, c.readOn, c.setupOn, c.mustReach].filter((x): x is string => !!x) : []),
      ...(p.queries ?? []).map((q) => q.on),
      ...(p.compare ?? []).flatMap((q) => q.on),
    ];
  },
  validate(p, v) {
    if (!p.http?.length && !p.canary && !p.queries?.length && !p.compare?.length)
      v.issue([], 'a smoke test needs at least one of http, canary, queries, compare');
    (p.queries ?? []).forEach((q, i) => {
      if (!isReadStatement(q.sql))
        v.issue(
          ['queries', i, 'sql'],
          'queries must be read-only (SELECT, SHOW...); the canary is the only write',
        );
    });
    (p.compare ?? []).forEach((c, i) => {
      if (!c.sql === !c.table) v.issue(['compare', i], 'give exactly one of sql or table');
      if (c.sql && !isReadStatement(c.sql))
        v.issue(['compare', i, 'sql'], 'compared queries must be read-only');
      if (c.on[0] === c.on[1]) v.issue(['compare', i, 'on'], 'compare two different databases');
    });
    (p.http ?? []).forEach((h, i) => {
      if (h.bodyMatches !== undefined)
        try {
          new RegExp(h.bodyMatches);
        } catch (e) {
          v.issue(['http', i, 'bodyMatches'], `not a regular expression: ${errorMessage(e)}`);
        }
    });
    if (p.bypass && !p.bypass.header && !p.bypass.localAddress)
      v.issue(['bypass'], 'bypass needs header or localAddress');
  },
  describe(p) {
    const lines: string[] = [];
    for (const [i, h] of (p.http ?? []).entries())
      lines.push(
        `would check ${h.method ?? 'GET'} ${h.url}${h.name ? ` (${h.name})` : ` (http[${i}])`}${p.bypass && h.bypass !== false ? ' through the bypass' : ''}`,
      );
    if (p.canary) {
      const c = p.canary;
      lines.push(
        `would write a canary row into ${canaryTable(p)} through ${c.on}${c.mustReach ? ` (must land on ${c.mustReach})` : ''}, read it back on ${c.readOn ?? c.on}, then delete it`,
      );
    }
    for (const q of p.queries ?? []) lines.push(`would run on ${q.on}: ${q.sql}`);
    for (const c of p.compare ?? [])
      lines.push(
        `would compare ${c.table ? `row counts of ${c.table}` : c.sql} between ${c.on[0]} and ${c.on[1]}`,
      );
    return lines;
  },

  async snapshot(ctx, p) {
    if (!p.canary) return {};
    const setup = await ctx.adapters.use(mysqlAdapter, p.canary.setupOn ?? p.canary.on);
    const table = canaryTable(p);
    return { canaryId: newCanaryId(ctx), table, tableExisted: await tableExists(setup, table) };
  },

  async apply(ctx, p, snap) {
    const http = await runHttp(ctx, p);
    const canary = p.canary ? await runCanary(ctx, p, snap ?? {}) : undefined;
    const queries = await runQueries(ctx, p);
    const compare = await runCompare(ctx, p);
    const all = [...http, ...(canary ? [{ ...canary, name: 'canary' }] : []), ...queries, ...compare];
    for (const r of all) ctx.log(`${r.name}: ${r.ok ? 'ok' : r.problems.join(', ')}`);
    const failures = all.filter((r) => !r.ok).map((r) => `${r.name}: ${r.problems.join(', ')}`);
    const outputs: Outputs = {
      passed: failures.length === 0,
      http,
      ...(canary ? { canary } : {}),
      queries,
      compare,
    };
    if (failures.length)
      throw new StepError(
        'SMOKE_TEST_FAILED',
        `smoke test failed (${failures.length} of ${all.length} checks): ${failures.join('; ')}`,
        outputs,
      );
    return outputs;
  },
});
