import { z } from 'zod';
import { StepError } from '../../errors.js';
import { defineKind } from '../../engine/types.js';

const Params = z.lazy(() =>
  z
    .object({
      command: z.string().min(1).describe('bash command; templated values arrive as single shell words'),
      undo: z.string().min(1).optional().describe('command that reverses `command`'),
      check: z
        .string()
        .min(1)
        .optional()
        .describe(
          'read-only command that exits 0 when the change is in place (verify, and resume after a crash)',
        ),
      cwd: z.string().optional(),
      env: z.record(z.string(), z.string()).optional(),
    })
    .strict(),
);

export const shellRun = defineKind<z.infer<typeof Params>, undefined, { stdout: string; exitCode: number }>({
  kind: 'shell.run',
  summary: 'run a shell command (with an optional undo command)',
  params: Params,
  outputs: ['stdout', 'exitCode'],
  shellFields: ['command', 'undo', 'check'],
  describe: (p) => [`would run: ${p.command}`, ...(p.undo ? [`  undo would run: ${p.undo}`] : [])],
  async apply(ctx, p) {
    const r = await ctx.adapters.shell.run(p.command, { cwd: p.cwd, env: p.env, signal: ctx.signal });
    return { stdout: r.stdout.trim(), exitCode: r.exitCode };
  },
  async verify(ctx, p) {
    if (!p.check) return;
    const r = await ctx.adapters.shell.read(p.check, {
      cwd: p.cwd,
      env: p.env,
      signal: ctx.signal,
      nothrow: true,
    });
    if (r.exitCode !== 0)
      throw new StepError('CHECK_FAILED', `check command exited ${r.exitCode}: ${p.check}`);
  },
  async isApplied(ctx, p) {
    // Without a check command nothing tells whether it ran: re-run it (commands should be idempotent).
    if (!p.check) return false;
    const r = await ctx.adapters.shell.read(p.check, {
      cwd: p.cwd,
      env: p.env,
      signal: ctx.signal,
      nothrow: true,
    });
    return r.exitCode === 0;
  },
  async undo(ctx, p) {
    if (p.undo) await ctx.adapters.shell.run(p.undo, { cwd: p.cwd, env: p.env, signal: ctx.signal });
  },
  // Without `undo` nothing can reverse the command: a rollback leaves it, listed for a human.
  hasUndo: (w) => w.undo !== undefined,
  restoreHint: (p) =>
    p.undo
      ? [`run the undo command by hand: ${p.undo}`]
      : [`reverse by hand what this command did (it has no undo): ${p.command}`],
});
