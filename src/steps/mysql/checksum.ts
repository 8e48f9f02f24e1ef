// Consistency after the freeze: the same tables on both sides must hold the same rows. CHECKSUM
// TABLE when both servers are the same version on the same platform (its value depends on row
// format, version and storage engine: RDS MySQL 8.0 and Aurora 3 both say 8.0 but store rows
// differently); otherwise, or on request, BIT_XOR(CRC32(...)) over the rows, chunked by primary key
// so a big table is compared piece by piece and a difference is located.
import { z } from 'zod';
import type { MysqlAdapter } from '../../adapters/mysql.js';
import type { Flavor } from '../../adapters/mysql-flavor.js';
import { defineKind } from '../../engine/types.js';
import { StepError } from '../../errors.js';
import { DbName, db } from './common.js';
import { ident } from './heartbeat.js';

const Name = /^[\w$]+$/;
const Params = z.lazy(() =>
  z
    .object({
      source: DbName,
      replica: DbName,
      schemas: z
        .array(z.string().regex(Name))
        .optional()
        .describe('compare every base table of these schemas'),
      tables: z
        .array(z.string().regex(/^[\w$]+\.[\w$]+$/, 'schema.table'))
        .optional()
        .describe('compare these tables ("schema.table")'),
      exclude: z.array(z.string().regex(/^[\w$]+\.[\w$]+$/, 'schema.table')).default([]),
      method: z
        .enum(['auto', 'checksum-table', 'crc32'])
        .default('auto')
        .describe(
          'auto: CHECKSUM TABLE when both servers run the same version on the same platform, else chunked CRC32',
        ),
      chunkRows: z.number().int().min(100).default(100_000).describe('crc32: primary-key range per chunk'),
    })
    .strict(),
);
type P = z.infer<typeof Params>;

interface Out extends Record<string, unknown> {
  tables: number;
  differing: string[];
  method: 'checksum-table' | 'crc32';
}

async function listTables(a: MysqlAdapter, p: P): Promise<string[]> {
  const out = new Set(p.tables ?? []);
  if (p.schemas?.length) {
    const rows = await a.query<{ s: string; t: string }>(
      `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA IN (${p.schemas.map(() => '?').join(', ')})`,
      p.schemas,
      { op: 'list-tables' },
    );
    for (const r of rows) out.add(`${r.s}.${r.t}`);
  }
  return [...out].filter((t) => !p.exclude.includes(t)).sort();
}

const qualified = (t: string) => t.split('.').map(ident).join('.');

async function checksumTables(a: MysqlAdapter, tables: string[]): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  for (let i = 0; i < tables.length; i += 20) {
    const batch = tables.slice(i, i + 20);
    const rows = await a.query<{ Table: string; Checksum: unknown }>(
      `CHECKSUM TABLE ${batch.map(qualified).join(', ')}`,
      [],
      { op: 'checksum-table' },
    );
    for (const [j, r] of rows.entries())
      out.set(
        batch[j] ?? String(r.Table),
        r.Checksum === null || r.Checksum === undefined ? null : String(r.Checksum),
      );
  }
  return out;
}

interface TableShape {
  columns: string[];
  /** Single integer primary key column, for range chunks. */
  pk: string | undefined;
}

async function shape(a: MysqlAdapter, table: string): Promise<TableShape | undefined> {
  const [schema, name] = table.split('.') as [string, string];
  const cols = await a.query<{ c: string }>(
    'SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
    [schema, name],
    { op: 'columns' },
  );
  if (!cols.length) return undefined;
  const pk = await a.query<{ c: string; d: string }>(
    "SELECT k.COLUMN_NAME AS c, c.DATA_TYPE AS d FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = k.TABLE_SCHEMA AND c.TABLE_NAME = k.TABLE_NAME AND c.COLUMN_NAME = k.COLUMN_NAME WHERE k.TABLE_SCHEMA = ? AND k.TABLE_NAME = ? AND k.CONSTRAINT_NAME = 'PRIMARY' ORDER BY k.ORDINAL_POSITION",
    [schema, name],
    { op: 'primary-key' },
  );
  const intPk = pk.length === 1 && /int$/i.test(pk[0]!.d) ? pk[0]!.c : undefined;
  return { columns: cols.map((c) => c.c), pk: intPk };
}

/** COUNT and an order-independent CRC of the rows; NULL and '' differ thanks to the ISNULL bitmap. */
export function crcSql(table: string, columns: string[], pk?: string): string {
  const cols = columns.map(ident);
  const nulls = `CONCAT(${cols.map((c) => `ISNULL(${c})`).join(', ')})`;
  const where = pk ? ` WHERE ${ident(pk)} BETWEEN ? AND ?` : '';
  return `SELECT COUNT(*) AS n, COALESCE(BIT_XOR(CAST(CRC32(CONCAT_WS('#', ${cols.join(', ')}, ${nulls})) AS UNSIGNED)), 0) AS crc FROM ${qualified(table)}${where}`;
}

async function crcCompare(
  s: MysqlAdapter,
  r: MysqlAdapter,
  table: string,
  chunkRows: number,
): Promise<string | undefined> {
  const [a, b] = await Promise.all([shape(s, table), shape(r, table)]);
  if (!a || !b) return `${table} (missing on ${!a ? s.name : r.name})`;
  if (a.columns.join(',') !== b.columns.join(',')) return `${table} (columns differ)`;
  const cols = a.columns;
  if (!a.pk) {
    const sql = crcSql(table, cols);
    const [x, y] = await Promise.all([s.query(sql, [], { op: 'crc32' }), r.query(sql, [], { op: 'crc32' })]);
    return String(x[0]?.n) === String(y[0]?.n) && String(x[0]?.crc) === String(y[0]?.crc)
      ? undefined
      : `${table} (${x[0]?.n} vs ${y[0]?.n} rows)`;
  }
  const pk = a.pk;
  const range = `SELECT MIN(${ident(pk)}) AS lo, MAX(${ident(pk)}) AS hi FROM ${qualified(table)}`;
  const [ra, rb] = await Promise.all([
    s.query(range, [], { op: 'pk-range' }),
    r.query(range, [], { op: 'pk-range' }),
  ]);
  const nums = [ra[0]?.lo, ra[0]?.hi, rb[0]?.lo, rb[0]?.hi]
    .filter((v) => v !== null && v !== undefined)
    .map((v) => BigInt(String(v)));
  if (!nums.length) return undefined; // both empty
  nums.sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  const lo = nums[0]!;
  const hi = nums[nums.length - 1]!;
  const sql = crcSql(table, cols, pk);
  const bad: string[] = [];
  for (let from = lo; from <= hi; from += BigInt(chunkRows)) {
    const to = from + BigInt(chunkRows) - 1n < hi ? from + BigInt(chunkRows) - 1n : hi;
    const params = [from.toString(), to.toString()];
    const [x, y] = await Promise.all([
      s.query(sql, params, { op: 'crc32' }),
      r.query(sql, params, { op: 'crc32' }),
    ]);
    if (String(x[0]?.n) !== String(y[0]?.n) || String(x[0]?.crc) !== String(y[0]?.crc))
      bad.push(`${pk} ${from}-${to}: ${x[0]?.n} vs ${y[0]?.n} rows`);
  }
  return bad.length
    ? `${table} (${bad.slice(0, 3).join('; ')}${bad.length > 3 ? `; +${bad.length - 3} chunks` : ''})`
    : undefined;
}

/** CHECKSUM TABLE only where both sides store rows alike: same vendor, version and platform. */
export function autoMethod(a: Flavor, b: Flavor): Out['method'] {
  const same =
    a.vendor === b.vendor && a.major === b.major && a.minor === b.minor && a.platform === b.platform;
  return same ? 'checksum-table' : 'crc32';
}

export const checksum = defineKind<P, undefined, Out>({
  kind: 'mysql.checksum',
  summary:
    'compare tables between source and replica (CHECKSUM TABLE or chunked CRC32); fails naming the tables that differ',
  params: Params,
  readOnly: true,
  outputs: ['tables', 'differing', 'method'],
  databases: (p) => [p.source, p.replica],
  validate(p, v) {
    if (!p.schemas?.length && !p.tables?.length)
      v.issue([], 'give schemas: [...] or tables: [...] to compare');
    if (p.source === p.replica) v.issue(['replica'], 'source and replica are the same database');
  },
  describe: (p) => [
    `would compare ${[...(p.tables ?? []), ...(p.schemas ?? []).map((s) => `${s}.*`)].join(', ')} between ${p.source} and ${p.replica} (${p.method})`,
  ],
  async apply(ctx, p) {
    const [s, r] = await Promise.all([db(ctx, p.source), db(ctx, p.replica)]);
    const [ts, tr] = await Promise.all([listTables(s, p), listTables(r, p)]);
    const tables = [...new Set([...ts, ...tr])].sort();
    const method: Out['method'] = p.method === 'auto' ? autoMethod(s.flavor, r.flavor) : p.method;
    const differing: string[] = [];
    if (method === 'checksum-table') {
      const [a, b] = await Promise.all([checksumTables(s, tables), checksumTables(r, tables)]);
      for (const t of tables) {
        const x = a.get(t) ?? null;
        const y = b.get(t) ?? null;
        if (x === null && y === null) continue;
        if (x === null || y === null)
          differing.push(`${t} (missing on ${x === null ? p.source : p.replica})`);
        else if (x !== y) differing.push(t);
      }
    } else {
      for (const t of tables) {
        ctx.progress({ label: `checksum ${t}`, current: tables.indexOf(t) + 1, total: tables.length });
        const d = await crcCompare(s, r, t, p.chunkRows);
        if (d) differing.push(d);
      }
    }
    ctx.log(
      `${tables.length} table(s) compared by ${method}: ${differing.length ? `${differing.length} differ` : 'identical'}`,
    );
    if (differing.length) {
      const frozen = (await s.readOnly()).readOnly;
      throw new StepError(
        'CHECKSUM_MISMATCH',
        `${differing.length} of ${tables.length} table(s) differ between ${p.source} and ${p.replica}: ${differing.join(', ')}${frozen ? '' : ` (${p.source} is not read-only: writes in flight can explain it)`}`,
        { differing, method },
      );
    }
    return { tables: tables.length, differing, method };
  },
});
