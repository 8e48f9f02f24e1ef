import { z } from 'zod';
import { defineKind } from '../../engine/types.js';
import { StepError } from '../../errors.js';
import { Duration } from '../../runbook/schema.js';
import {
  applyReadOnly,
  blockerText,
  DbName,
  db,
  findBlockers,
  killSession,
  ms,
  onOff,
  type ReadOnlyState,
  readOnlyStatements,
  readOnlyText,
} from './common.js';

const Params = z.lazy(() =>
  z
    .object({
      on: DbName,
      readOnly: z
        .boolean()
        .default(true)
        .describe('true sets read_only, false clears it (and super_read_only)'),
      superReadOnly: z
        .boolean()
        .optional()
        .describe(
          'MySQL only: also set super_read_only so accounts with SUPER cannot write either (default: same as readOnly)',
        ),
      lockWaitTimeout: Duration.default('2s').describe(
        'how long SET GLOBAL read_only may wait for locks before failing',
      ),
      killBlockers: z
        .boolean()
        .default(false)
        .describe(
          'end the sessions that would block it first (LOCK TABLES, FLUSH TABLES WITH READ LOCK, long writes)',
        ),
    })
    .strict(),
);
type P = z.infer<typeof Params>;

interface Snap extends ReadOnlyState {
  flavor: string;
}

function target(p: P, s: ReadOnlyState): ReadOnlyState {
  const hasSuper = s.superReadOnly !== null;
  return {
    readOnly: p.readOnly,
    superReadOnly: hasSuper ? (p.readOnly ? (p.superReadOnly ?? true) : false) : null,
  };
}

export const readOnlyKind = defineKind<
  P,
  Snap,
  { readOnly: boolean; superReadOnly: boolean | null; killed: number }
>({
  kind: 'mysql.read-only',
  summary:
    'set or clear read_only (and super_read_only) with a short lock wait; undo restores the exact previous values',
  params: Params,
  outputs: ['readOnly', 'superReadOnly', 'killed'],
  databases: (p) => [p.on],
  describe(p, snap) {
    if (!snap) return [`would SET GLOBAL read_only = ${onOff(p.readOnly)} on ${p.on}`];
    const lines = readOnlyStatements(snap, target(p, snap)).map(
      (s) =>
        `would ${s.sql} on ${p.on} (was ${onOff(s.variable === 'read_only' ? snap.readOnly : snap.superReadOnly)})`,
    );
    if (!lines.length) lines.push(`${p.on} already has ${readOnlyText(target(p, snap))}: nothing to change`);
    if (p.readOnly && p.killBlockers) lines.push(`  sessions holding locks on ${p.on} would be ended first`);
    return lines;
  },
  async snapshot(ctx, p) {
    const a = await db(ctx, p.on);
    return { ...(await a.readOnly()), flavor: a.flavor.label };
  },
  async apply(ctx, p, snap) {
    const a = await db(ctx, p.on);
    const to = target(p, snap);
    if (!readOnlyStatements(snap, to).length) return { ...to, killed: 0 };
    if (!a.sql.canSetReadOnly)
      throw new StepError(
        'READ_ONLY_UNSUPPORTED',
        `${a.label} is ${a.flavor.label}: read_only is a parameter-group setting there and SQL cannot change it — change the DB parameter group, or fence writes with a security group and mysql.connections.drain`,
      );
    await a.requirePrivilege('set-read-only', 'SET GLOBAL read_only');
    let killed = 0;
    if (p.readOnly) {
      const blockers = await findBlockers(a);
      if (blockers.length && p.killBlockers) {
        await a.requirePrivilege('kill-others', 'ending the sessions that block read_only');
        for (const b of blockers) if (await killSession(a, b)) killed++;
      } else if (blockers.length)
        ctx.warn(`${a.label}: sessions that may block read_only: ${blockers.map(blockerText).join(', ')}`);
    }
    await applyReadOnly(a, snap, to, ms(p.lockWaitTimeout), `${p.readOnly ? 'freeze' : 'unfreeze'} ${p.on}`);
    return { ...to, killed };
  },
  async verify(ctx, p, snap) {
    const a = await db(ctx, p.on);
    const want = target(p, snap);
    const got = await a.readOnly();
    if (got.readOnly !== want.readOnly || got.superReadOnly !== want.superReadOnly)
      throw new StepError(
        'READ_ONLY_NOT_SET',
        `${a.label}: expected ${readOnlyText(want)}, found ${readOnlyText(got)}`,
      );
  },
  async undo(ctx, p, snap) {
    const a = await db(ctx, p.on);
    const now = await a.readOnly();
    await applyReadOnly(a, now, snap, ms(p.lockWaitTimeout), `restore ${p.on} as it was`);
    const got = await a.readOnly();
    if (got.readOnly !== snap.readOnly || got.superReadOnly !== snap.superReadOnly)
      throw new StepError(
        'READ_ONLY_NOT_RESTORED',
        `${a.label}: expected ${readOnlyText(snap)} after undo, found ${readOnlyText(got)}`,
      );
  },
});
