// Ad-hoc SQL. `mysql.query` only reads (validated, and run in a READ ONLY transaction so a function
// with side effects is refused by the server too): usable as a before/after check. A write is a
// separate kind, `mysql.exec`, which cannot be declared without the query that undoes it (the
// engine's read-only flag is per kind, and a check must never be able to write).
import { z } from 'zod';
import { isReadStatement, statementHead } from '../../adapters/mysql.js';
import { defineKind } from '../../engine/types.js';
import { StepError } from '../../errors.js';
import { Duration } from '../../runbook/schema.js';
import { DbName, db, ms } from './common.js';

const SqlParam = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const Expect = z.lazy(() =>
  z
    .object({
      rows: z.number().int().min(0).optional().describe('exact number of rows'),
      minRows: z.number().int().min(0).optional(),
      maxRows: z.number().int().min(0).optional(),
      equals: SqlParam.optional().describe('the first column of the first row equals this'),
      atMost: z.number().optional().describe('the first value is a number ≤ this'),
      atLeast: z.number().optional().describe('the first value is a number ≥ this'),
      notNull: z.boolean().optional().describe('there is a first value and it is not NULL'),
    })
    .strict(),
);
type ExpectT = z.infer<typeof Expect>;

const QueryParams = z.lazy(() =>
  z
    .object({
      on: DbName,
      sql: z.string().min(1).describe('a read: SELECT, SHOW, WITH ... SELECT, EXPLAIN, CHECKSUM TABLE'),
      params: z.array(SqlParam).default([]).describe('values for ? placeholders'),
      expect: Expect.optional(),
      timeout: Duration.default('30s'),
    })
    .strict(),
);
type QP = z.infer<typeof QueryParams>;

function printable(v: unknown): string {
  return v === null
    ? 'NULL'
    : v === undefined
      ? 'nothing'
      : typeof v === 'string'
        ? JSON.stringify(v)
        : String(v);
}

/** Problems with a result, [] when it meets every expectation. */
export function checkResult(rows: Record<string, unknown>[], e: ExpectT | undefined): string[] {
  if (!e) return [];
  const out: string[] = [];
  const first = rows[0] ? Object.values(rows[0])[0] : undefined;
  if (e.rows !== undefined && rows.length !== e.rows) out.push(`${rows.length} row(s), expected ${e.rows}`);
  if (e.minRows !== undefined && rows.length < e.minRows)
    out.push(`${rows.length} row(s), expected at least ${e.minRows}`);
  if (e.maxRows !== undefined && rows.length > e.maxRows)
    out.push(`${rows.length} row(s), expected at most ${e.maxRows}`);
  if (e.notNull && (first === null || first === undefined))
    out.push(`first value is ${printable(first)}, expected a value`);
  if (e.equals !== undefined) {
    const want = e.equals;
    const ok =
      want === null
        ? first === null
        : typeof want === 'number'
          ? first !== null && first !== undefined && Number(first) === want
          : typeof want === 'boolean'
            ? first !== null && first !== undefined && (Number(first) !== 0) === want
            : first !== null && first !== undefined && String(first) === want;
    if (!ok) out.push(`first value is ${printable(first)}, expected ${printable(want)}`);
  }
  const n = first === null || first === undefined ? Number.NaN : Number(first);
  if (e.atMost !== undefined && !(n <= e.atMost))
    out.push(`first value is ${printable(first)}, expected at most ${e.atMost}`);
  if (e.atLeast !== undefined && !(n >= e.atLeast))
    out.push(`first value is ${printable(first)}, expected at least ${e.atLeast}`);
  return out;
}

function plain(row: Record<string, unknown> | undefined): Record<string, unknown> | null {
  if (!row) return null;
  return Object.fromEntries(
    Object.entries(row).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('utf8') : v]),
  );
}

export const query = defineKind<
  QP,
  undefined,
  { rows: number; value: unknown; row: Record<string, unknown> | null }
>({
  kind: 'mysql.query',
  summary: 'run a read-only query and check its result (row count, first value); outputs the first row',
  params: QueryParams,
  readOnly: true,
  outputs: ['rows', 'value', 'row'],
  databases: (p) => [p.on],
  validate(p, v) {
    if (!isReadStatement(p.sql))
      v.issue(
        ['sql'],
        `mysql.query only reads; "${statementHead(p.sql)}" writes — use mysql.exec with an undo query`,
      );
  },
  describe: (p) => [
    `would query ${p.on}: ${p.sql}${p.expect ? ` and expect ${JSON.stringify(p.expect)}` : ''}`,
  ],
  async apply(ctx, p) {
    const a = await db(ctx, p.on);
    const rows = await a.query(p.sql, p.params, {
      op: 'user-query',
      timeoutMs: ms(p.timeout),
      signal: ctx.signal,
      readOnlyTransaction: true,
    });
    const problems = checkResult(rows, p.expect);
    const row = plain(rows[0]);
    const value = row ? (Object.values(row)[0] ?? null) : null;
    if (problems.length)
      throw new StepError('QUERY_CHECK_FAILED', `${a.label}: ${problems.join('; ')} (${p.sql})`, {
        rows: rows.length,
        value,
      });
    return { rows: rows.length, value, row };
  },
});

const ExecParams = z.lazy(() =>
  z
    .object({
      on: DbName,
      sql: z.string().min(1).describe('the write'),
      params: z.array(SqlParam).default([]),
      undo: z
        .string()
        .min(1)
        .describe('the statement that reverses it (required: a write without undo cannot be rolled back)'),
      undoParams: z.array(SqlParam).default([]),
      expectAffectedRows: z.number().int().min(0).optional(),
      timeout: Duration.default('30s'),
    })
    .strict(),
);
type EP = z.infer<typeof ExecParams>;

export const exec = defineKind<EP, undefined, { affectedRows: number }>({
  kind: 'mysql.exec',
  summary: 'run a write statement, with the statement that undoes it',
  params: ExecParams,
  outputs: ['affectedRows'],
  databases: (p) => [p.on],
  describe: (p) => [`would run on ${p.on}: ${p.sql}`, `  undo would run: ${p.undo}`],
  async apply(ctx, p) {
    const a = await db(ctx, p.on);
    const r = await a.exec(
      p.sql,
      p.params,
      { action: 'run', target: `on ${p.on}`, detail: p.sql },
      { op: 'user-exec', timeoutMs: ms(p.timeout), signal: ctx.signal },
    );
    if (r.applied && p.expectAffectedRows !== undefined && r.affectedRows !== p.expectAffectedRows)
      throw new StepError(
        'AFFECTED_ROWS',
        `${a.label}: ${r.affectedRows} row(s) changed, expected ${p.expectAffectedRows} (${p.sql})`,
      );
    return { affectedRows: r.affectedRows };
  },
  async undo(ctx, p) {
    const a = await db(ctx, p.on);
    await a.exec(
      p.undo,
      p.undoParams,
      { action: 'run', target: `on ${p.on}`, detail: p.undo },
      { op: 'user-undo', timeoutMs: ms(p.timeout) },
    );
  },
});
