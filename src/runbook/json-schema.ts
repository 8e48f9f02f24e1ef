// The runbook JSON Schema for editors: the generic step shape, plus one branch per kind so
// `with:` autocompletes with that kind's parameters.
import { z } from 'zod';
import { kinds } from '../steps/registry.js';
import { RunbookSpec } from './schema.js';

export function runbookJsonSchema(): Record<string, unknown> {
  const base = z.toJSONSchema(RunbookSpec, { io: 'input', unrepresentable: 'any' }) as Record<string, any>;
  const stepSchema = base.properties.steps.items as Record<string, any>;
  const withSchemas: Record<string, unknown>[] = [];
  for (const k of kinds.values()) {
    let params: Record<string, unknown>;
    try {
      params = z.toJSONSchema(k.params, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
    } catch {
      params = { type: 'object' };
    }
    delete params.$schema;
    withSchemas.push({
      if: { properties: { kind: { const: k.kind } }, required: ['kind'] },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then, not a thenable
      then: { properties: { with: params } },
    });
  }
  stepSchema.properties.kind = {
    type: 'string',
    enum: [...kinds.keys()],
    description: 'the step kind (`cutover kinds` lists them)',
  };
  stepSchema.allOf = withSchemas;
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://github.com/cutover/cutover/schema/runbook.schema.json',
    title: 'cutover runbook',
    ...base,
  };
}
