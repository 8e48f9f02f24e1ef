// The editor schema checked by an independent validator (ajv, draft 2020-12, formats on), as
// yaml-language-server would: every runbook the project ships or documents is valid under it (an
// editor showing errors on a valid runbook teaches people to ignore it), and every entry of the
// malformed corpus that a schema can see is invalid under it.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runbookJsonSchema } from '../../../src/runbook/json-schema.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const INVALID = join(ROOT, 'test', 'fixtures', 'runbooks', 'invalid');
const VALID = join(ROOT, 'test', 'fixtures', 'runbooks', 'valid');

// Which malformed runbooks a JSON Schema can refuse. Every corpus file is in exactly one list, so a
// new one must be placed.
const SCHEMA_LEVEL = [
  '05-version-wrong-type', // wrong type
  '06-missing-version', // required key
  '07-missing-name',
  '08-missing-steps',
  '09-empty-steps', // minItems
  '10-unknown-top-level-key', // unknown key
  '11-unknown-step-key',
  '12-unknown-kind', // enum
  '19-bad-duration', // duration pattern
  '20-retries-out-of-range', // maximum
  '21-non-read-only-check', // checks: enum of read-only kinds
  '22-bad-param-type', // a kind's parameter type
  '23-missing-required-param',
  '27-approval-wrong-type',
  '28-bad-step-id', // pattern
  '29-unknown-check-kind',
  '30-bad-wait-until', // duration pattern
  '31-not-a-mapping',
  '32-unknown-param-key',
  '34-bad-port', // range
  '35-zero-timeout', // positive duration pattern
  '36-bad-budget', // a budget in words
  '37-unknown-rollback-kind',
  '40-secret-literal-env-typo', // { envv: ... } is no reference
  '48-zero-budget',
  '49-name-too-long', // maxLength
  '56-literal-password', // a password is a reference, never text
  '57-secret-param-literal-default',
];
// Not a YAML document a schema is shown: the parser refuses it first (or would expand it).
const YAML_LEVEL = [
  '01-unclosed-quote',
  '02-unclosed-flow-map',
  '03-tab-indentation',
  '04-duplicate-yaml-key',
  '43-yaml-undefined-alias',
  '44-yaml-excessive-aliases',
  '45-yaml-recursive-alias',
  '46-deep-nesting',
  '54-keys-differ-by-type', // two keys the loaded mapping collapses into one
];
// References, templates, order, cross-field rules and sums: the validator's, not a schema's. These
// must be valid under the schema (it accepts what the loader's schema accepts).
const SEMANTIC = [
  '13-duplicate-step-id',
  '14-dangling-param',
  '15-later-step-output',
  '16-missing-output',
  '17-unknown-namespace',
  '18-unknown-database',
  '24-var-unknown-param',
  '25-param-without-default',
  '26-point-of-no-return-before-unsafe-undo',
  '33-bad-expression',
  '38-dangling-param-in-default',
  '39-step-ref-without-outputs',
  '41-unknown-database-in-step',
  '42-sql-template',
  '47-duration-beyond-timer', // 600h: a sum past the timer limit, not a shape
  '50-builtin-member-ref',
  '51-unclosed-template',
  '52-bidi-in-command',
  '53-nul-in-command',
  '55-lookalike-identifier',
  '58-check-writes-unacknowledged', // a check's acknowledgement depends on its kind's params
  '59-check-writes-wrong-tag',
];

// CommonJS packages: under NodeNext the default import is module.exports, the class is its .default.
const Ajv2020 = Ajv2020Module.default;
const addFormats = addFormatsModule.default;
const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
addFormats(ajv);
const validate = ajv.compile(runbookJsonSchema());

const load = (file: string): unknown => parse(readFileSync(file, 'utf8'));
const errors = () =>
  (validate.errors ?? [])
    .filter((e) => !['if', 'anyOf'].includes(e.keyword))
    .map((e) => `${e.instancePath} ${e.message}`)
    .slice(0, 5);

/** The README's runbook example (the block that names the schema on its first line). */
function readmeExample(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const block = /```yaml\n(# yaml-language-server: \$schema=[^\n]*\n[\s\S]*?)```/.exec(readme);
  if (!block) throw new Error('README.md: no runbook example');
  return block[1]!;
}

describe('the editor schema under ajv (draft 2020-12, formats on)', () => {
  const shipped = [
    ...readdirSync(join(ROOT, 'runbooks'))
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => join('runbooks', f)),
    ...readdirSync(VALID)
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => join('test', 'fixtures', 'runbooks', 'valid', f)),
  ];

  it.each(shipped)('%s is valid', (f) => {
    expect(validate(load(join(ROOT, f))), errors().join('\n')).toBe(true);
  });

  it("README's runbook example is valid", () => {
    expect(validate(parse(readmeExample())), errors().join('\n')).toBe(true);
  });

  it('every malformed runbook is placed: schema-level, YAML-level or semantic', () => {
    const corpus = readdirSync(INVALID)
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => f.replace(/\.yaml$/, ''))
      .sort();
    expect([...SCHEMA_LEVEL, ...YAML_LEVEL, ...SEMANTIC].sort()).toEqual(corpus);
  });

  it.each(SCHEMA_LEVEL)('%s is invalid', (name) => {
    expect(validate(load(join(INVALID, `${name}.yaml`)))).toBe(false);
  });

  it.each(SEMANTIC)('%s passes the schema (the validator refuses it)', (name) => {
    expect(validate(load(join(INVALID, `${name}.yaml`))), errors().join('\n')).toBe(true);
  });

  // The cases the schema used to get wrong, each on a copy of a valid runbook.
  const minimal = () =>
    parse(readFileSync(join(VALID, 'minimal.yaml'), 'utf8')) as { steps: Record<string, unknown>[] } & Record<
      string,
      unknown
    >;
  const withStep = (step: Record<string, unknown>, top: Record<string, unknown> = {}) => ({
    ...minimal(),
    ...top,
    steps: [{ id: 'x', ...step }],
  });

  it.each([
    ['a templated URL', { kind: 'http.check', with: { url: '${params.webUrl}/health' } }],
    [
      'a templated group id',
      { kind: 'aws.security-group.restrict', with: { groupId: '${params.sg}', port: 3306, allow: [] } },
    ],
    [
      'a templated number',
      { kind: 'mysql.replica-lag', with: { source: 'a', replica: 'b', maxLagSeconds: '${params.lag}' } },
    ],
    [
      'a number as text',
      { kind: 'mysql.replica-lag', with: { source: 'a', replica: 'b', maxLagSeconds: '2' } },
    ],
    ['a templated duration', { kind: 'wait', with: { duration: '${params.pause}' } }],
    [
      'a templated list',
      { kind: 'mysql.checksum', with: { source: 'a', replica: 'b', tables: '${params.tables}' } },
    ],
    ['a duration in units', { kind: 'wait', with: { duration: '1h30m' }, timeout: '90s' }],
  ])('accepts %s', (_what, step) => {
    expect(validate(withStep(step)), errors().join('\n')).toBe(true);
  });

  it.each([
    ['timeout: banana', { kind: 'wait', with: { duration: '1s' }, timeout: 'banana' }, {}],
    ['a duration in words', { kind: 'wait', with: { duration: 'ten seconds' } }, {}],
    [
      'a budget in words',
      { kind: 'wait', with: { duration: '1s' } },
      { maintenance: { budget: 'ten minutes' } },
    ],
    [
      'a literal group id that is not one',
      { kind: 'aws.security-group.restrict', with: { groupId: 'web', port: 3306, allow: [] } },
      {},
    ],
    ['a URL that is not one', { kind: 'http.check', with: { url: 'not a url' } }, {}],
    [
      'a literal password',
      { kind: 'wait', with: { duration: '1s' } },
      { databases: { old: { host: 'h', user: 'u', password: 'hunter22' } } },
    ],
  ])('refuses %s', (_what, step, top) => {
    expect(validate(withStep(step, top))).toBe(false);
  });
});
