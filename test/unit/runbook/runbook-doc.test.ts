// docs/runbook.md cannot drift from the schema: every top-level runbook key has its section, every
// notify event and defaults field is named, and the complete example validates as written.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RunbookError } from '../../../src/errors.js';
import { loadRunbookText } from '../../../src/runbook/load.js';
import { NotifySpec, RunbookSpec } from '../../../src/runbook/schema.js';
import { prepareRunbook } from '../../../src/runbook/validate.js';
import { REPO } from '../../helpers/cli.js';

const doc = readFileSync(join(REPO, 'docs', 'runbook.md'), 'utf8');

/** The text under a `### ...` heading that names `key`, up to the next heading. */
function section(key: string): string | undefined {
  const parts = doc.split(/^(?=#{2,3} )/m);
  return parts.find((p) => new RegExp(`^###[^\\n]*\`${key}\``).test(p));
}

describe('docs/runbook.md', () => {
  it('has a section and a table row for every top-level key of the schema', () => {
    const keys = Object.keys(RunbookSpec.shape);
    expect(keys.length).toBeGreaterThan(10);
    for (const key of keys) {
      expect(section(key), `no "### \`${key}\`" section`).toBeDefined();
      expect(doc, `no table row for ${key}`).toMatch(new RegExp(`^\\| \`${key}\` \\|`, 'm'));
    }
  });

  it('names every notify field and event, and every defaults field, in their sections', () => {
    const notify = section('notify')!;
    for (const field of Object.keys(NotifySpec.shape)) expect(notify).toContain(`\`${field}\``);
    for (const event of NotifySpec.shape.on.unwrap().element.options) {
      expect(notify).toContain(`\`${event}\``);
      expect(section('hooks')).toContain(`\`cutover-on-${event}\``);
    }
    const defaults = section('defaults')!;
    for (const field of Object.keys(RunbookSpec.shape.defaults.unwrap().shape))
      expect(defaults).toContain(`${field}:`);
  });

  it('shows a complete runbook that validates, using every top-level key', () => {
    const example = doc.match(/```yaml\n([\s\S]*?)```/)![1]!;
    let prepared: ReturnType<typeof prepareRunbook>;
    try {
      prepared = prepareRunbook(loadRunbookText(join(REPO, 'docs', 'example.yaml'), example), { env: {} });
    } catch (e) {
      if (e instanceof RunbookError) throw new Error(e.issues.map((i) => i.message).join('\n'));
      throw e;
    }
    expect(Object.keys(prepared.runbook).sort()).toEqual(Object.keys(RunbookSpec.shape).sort());
  });
});
