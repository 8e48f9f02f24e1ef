// The runbooks' first line points editors at schema/runbook.schema.json: the shipped file must be
// what `cutover schema` prints today (regenerate: cutover schema > schema/runbook.schema.json).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runbookJsonSchema } from '../../../src/runbook/json-schema.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');

describe('schema/runbook.schema.json', () => {
  it('is what `cutover schema` prints', () => {
    const shipped = JSON.parse(readFileSync(join(ROOT, 'schema', 'runbook.schema.json'), 'utf8'));
    expect(shipped).toEqual(JSON.parse(JSON.stringify(runbookJsonSchema())));
  });

  it('is the file the shipped runbooks name on their first line', () => {
    for (const rb of ['rds-to-aurora.yaml', 'sandbox.yaml'])
      expect(readFileSync(join(ROOT, 'runbooks', rb), 'utf8').split('\n')[0]).toBe(
        '# yaml-language-server: $schema=../schema/runbook.schema.json',
      );
  });
});
