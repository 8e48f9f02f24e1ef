import { z } from 'zod';
import { StepError } from '../../errors.js';
import { defineKind } from '../../engine/types.js';
import { evaluate } from '../../util/expression.js';

const Params = z.lazy(() =>
  z
    .object({
      that: z
        .string()
        .min(1)
        .describe(
          'expression, e.g. "${steps.lag.outputs.lagSeconds} <= 1 && ${steps.rds.outputs.status} == \'available\'"',
        ),
      message: z.string().optional(),
    })
    .strict(),
);

export const assertKind = defineKind<z.infer<typeof Params>, undefined, { value: unknown }>({
  kind: 'assert',
  summary: 'fail unless an expression over params and step outputs holds',
  params: Params,
  readOnly: true,
  outputs: ['value'],
  // Values substituted into the expression are JSON literals, so a string output stays a string.
  exprFields: ['that'],
  validate(p, v) {
    try {
      evaluate(p.that.replace(/<[\w-]+>/g, '0'), true);
    } catch (e) {
      v.issue(['that'], `cannot parse expression: ${(e as Error).message}`);
    }
  },
  describe: (p) => [`would check that ${p.that}`],
  async apply(_ctx, p) {
    const value = evaluate(p.that);
    if (!value) throw new StepError('ASSERTION_FAILED', p.message ?? `assertion failed: ${p.that}`);
    return { value };
  },
});
