// --var-file (KEY=value lines, the same as repeated --var), list parameters and envFiles named by a
// parameter: what lets one production template run against the sandbox unmodified.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRunbookText } from '../../../src/runbook/load.js';
import { prepareRunbook } from '../../../src/runbook/validate.js';
import { parseVarFile } from '../../../src/runbook/var-file.js';

const RUNBOOK = `version: 1
name: vars
params:
  hosts: [a.example, b.example]
  secretsFile: ""
  region: eu-west-1
envFiles: ["\${params.secretsFile}"]
databases:
  db: { host: h, user: u, password: { env: DB_PASSWORD } }
steps:
  - id: w
    kind: wait
    with: { duration: 1s }
`;

function prepare(vars: Record<string, string>) {
  return prepareRunbook(loadRunbookText('/tmp/vars.yaml', RUNBOOK), { vars, env: {} });
}

describe('--var-file', () => {
  it('reads KEY=value lines, skipping comments and blanks, unquoting like a shell', () => {
    expect(parseVarFile('# c\n\nzoneId=Z1\nrecord=\'db.x\'\nname="a b"\n', 'f.vars')).toEqual({
      zoneId: 'Z1',
      record: 'db.x',
      name: 'a b',
    });
  });

  it('names file:line of a line that is not key=value (a typo must not drop a value silently)', () => {
    expect(() => parseVarFile('a=1\nthis is wrong\n', 'prod.vars')).toThrow(
      /^prod\.vars:2:1 expected key=value/,
    );
  });

  it('never echoes the malformed line (it may be a secret without its key)', () => {
    expect(() => parseVarFile('a=1\nhunter2secret\n', 'prod.vars')).toThrow(
      /^prod\.vars:2:1 expected key=value \(the line, 13 characters, is not shown/,
    );
  });
});

describe('list parameters and envFiles named by a parameter', () => {
  it('a --var on a list parameter is split on commas', () => {
    expect(prepare({ hosts: 'local, c.example' }).params.hosts).toEqual(['local', 'c.example']);
    expect(prepare({}).params.hosts).toEqual(['a.example', 'b.example']);
  });

  it('envFiles: ${params.secretsFile} reads the file a vars file names, and nothing when empty', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cutover-vars-'));
    const secrets = join(dir, 'secrets.env');
    writeFileSync(secrets, 'DB_PASSWORD=from-file\n', { mode: 0o600 });
    expect(prepare({ secretsFile: secrets }).databases.db!.password).toBe('from-file');
    expect(prepare({}).databases.db!.password).toBeUndefined();
  });
});
