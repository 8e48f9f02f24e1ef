// mysql.replica-lag is usable as a check but is not a pure read: it creates a heartbeat table on the
// source and stamps rows there. Its kind says so (plans, `kinds`), and a before/after check of it
// must acknowledge that with `writes: heartbeat`, else the runbook is invalid at the check's line.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RunbookError } from '../../../src/errors.js';
import { prepareRunbookFile } from '../../../src/runbook/validate.js';
import { replicaLag } from '../../../src/steps/mysql/replica-lag.js';

const dir = mkdtempSync(join(tmpdir(), 'cutover-lag-writes-'));
function runbook(check: string): string {
  const file = join(dir, `rb-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(
    file,
    `version: 1
name: lag-check
databases:
  old: { host: 127.0.0.2, user: cutover, password: { env: CUTOVER_TEST_NO_SUCH_PASSWORD } }
  new: { host: 127.0.0.3, user: cutover, password: { env: CUTOVER_TEST_NO_SUCH_PASSWORD } }
steps:
  - id: pause
    kind: wait
    with: { duration: 1s }
    before:
${check}`,
  );
  return file;
}
function errors(file: string): string[] {
  try {
    prepareRunbookFile(file);
    return [];
  } catch (e) {
    if (!(e instanceof RunbookError)) throw e;
    return e.issues
      .filter((i) => i.severity === 'error')
      .map((i) => `${i.pos?.line}:${i.pos?.col} ${i.message}`);
  }
}

describe('mysql.replica-lag says what it writes', () => {
  const p = (w: Record<string, unknown>) => replicaLag.params.parse(w);

  it('its plan lines name the schema, the table and the source it writes to', () => {
    const lines = replicaLag.describe(p({ replica: 'new', source: 'old' }), undefined);
    expect(lines.join('\n')).toMatch(
      /writes on old: CREATE DATABASE\/TABLE cutover\.heartbeat if missing, then REPLACE INTO cutover\.heartbeat/,
    );
    const custom = replicaLag.describe(
      p({ replica: 'new', source: 'old', heartbeat: { schema: 'ops', table: 'hb' } }),
      undefined,
    );
    expect(custom.join('\n')).toContain('writes on old: CREATE DATABASE/TABLE ops.hb');
  });

  it('reads only without a source or with heartbeat.create: false: no write line', () => {
    expect(replicaLag.writes!.describe(p({ replica: 'new' }))).toBeUndefined();
    expect(
      replicaLag.writes!.describe(p({ replica: 'new', source: 'old', heartbeat: { create: false } })),
    ).toBeUndefined();
    expect(replicaLag.describe(p({ replica: 'new' }), undefined).join('\n')).not.toContain('writes');
  });
});

describe('a before: check that writes must say so', () => {
  it('unacknowledged: an error at the check kind, saying what it writes and what to add', () => {
    const errs = errors(
      runbook(`      - kind: mysql.replica-lag
        with: { replica: new, source: old }
`),
    );
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^11:15 this before check is not read-only: mysql\.replica-lag writes on old: /);
    expect(errs[0]).toContain('add `writes: heartbeat` to the check');
  });

  it('acknowledged with writes: heartbeat: valid', () => {
    expect(
      errors(
        runbook(`      - kind: mysql.replica-lag
        writes: heartbeat
        with: { replica: new, source: old }
`),
      ),
    ).toEqual([]);
  });

  it('a check of it that only reads needs nothing', () => {
    expect(
      errors(
        runbook(`      - kind: mysql.replica-lag
        with: { replica: new, source: old, heartbeat: { create: false } }
      - kind: mysql.replica-lag
        with: { replica: new }
`),
      ),
    ).toEqual([]);
  });

  it('a wrong tag, or writes: on a kind that writes nothing, is an error pointing at it', () => {
    const wrong = errors(
      runbook(`      - kind: mysql.replica-lag
        writes: rows
        with: { replica: new, source: old }
`),
    );
    expect(wrong).toEqual([
      expect.stringMatching(/^12:17 mysql\.replica-lag writes "heartbeat", not "rows"/),
    ]);
    const none = errors(
      runbook(`      - kind: wait
        writes: heartbeat
        with: { duration: 1s }
`),
    );
    expect(none).toEqual([expect.stringMatching(/^12:17 wait writes nothing: remove writes: heartbeat/)]);
  });
});
