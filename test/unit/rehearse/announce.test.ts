// `cutover announce` from known inputs: a runbook with two client paths under maintenance, one
// rehearsal in a runs directory; the start is --at, the end the predicted high end plus the margin.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal } from '../../../src/journal/journal.js';
import { Redactor } from '../../../src/journal/redact.js';
import { announceText } from '../../../src/rehearse/window.js';
import { parseAt, parseMargin } from '../../../src/report/announce.js';

const RUNBOOK = `version: 1
name: shop-window
maintenance: { budget: 5m }
steps:
  - id: enter
    kind: maintenance.enter
    with:
      command: "true"
      paths:
        - { name: web, url: "https://www.shop.example/", expect: { status: 503 } }
        - { name: mobile-api, url: "https://api.shop.example/m/v3", expect: { status: 503 } }
  - id: work
    kind: wait
    with: { duration: 30s }
  - id: exit
    kind: maintenance.exit
    with:
      command: "true"
      paths: [{ name: web, url: "https://www.shop.example/" }]
`;

let dir: string;
let file: string;
let runs: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cutover-announce-'));
  file = join(dir, 'rb.yaml');
  runs = join(dir, 'runs');
  writeFileSync(file, RUNBOOK);
  mkdirSync(runs);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** One succeeded rehearsal: enter 2 s, work 30 s (a fixed wait: environment), exit 2 s. */
function rehearsed(): void {
  const run = join(runs, '20261101T000000Z-shop-window-1');
  mkdirSync(run);
  const j = Journal.open(run, 'a'.repeat(64), new Redactor([]));
  j.append('rehearsal', {
    result: {
      status: 'succeeded',
      stepDurationsMs: { enter: 2000, work: 30_000, exit: 2000 },
      environmentMs: { work: { wait: 30_000 } },
    },
  });
  j.close();
}

const opts = (over: Record<string, unknown> = {}) => ({
  at: '2030-06-01T20:00Z',
  var: {},
  runsDir: runs,
  margin: '25%',
  format: 'md' as const,
  timeZone: 'UTC',
  ...over,
});

describe('cutover announce', () => {
  it('writes start, end (predicted high end + margin, whole minutes) and every path in maintenance', () => {
    rehearsed();
    const md = announceText(file, opts());
    // Predicted high end: (2 s + 2 s) ×1.25 own work + 30 s wait = 35 s; +25% = 43.75 s → 20:01.
    expect(md).toMatch(/^# Planned maintenance: shop-window$/m);
    expect(md).toMatch(/\*\*Start:\*\* Sat, 1 Jun 2030, 20:00 UTC/);
    expect(md).toMatch(/\*\*End:\*\* Sat, 1 Jun 2030, 20:01 UTC at the latest \(1 minute\)/);
    expect(md).toMatch(/^- web: `https:\/\/www\.shop\.example\/`$/m);
    expect(md).toMatch(/^- mobile-api: `https:\/\/api\.shop\.example\/m\/v3`$/m);
    expect(md).toMatch(/predicted time in maintenance: 33s to 35s .*1 rehearsal/);
    expect(md).toMatch(/margin: 25% of the predicted high end \(8\.8s\)/);
  });

  it('plain text has the same facts without Markdown, in the zone asked for', () => {
    rehearsed();
    const text = announceText(file, opts({ format: 'text', margin: '10m', timeZone: 'Europe/Paris' }));
    expect(text).not.toMatch(/[#`*]/);
    expect(text).toMatch(/^Start: Sat, 1 Jun 2030, 22:00 CEST$/m);
    // 35 s + 10 min → 22:10:35, rounded up to 22:11.
    expect(text).toMatch(/^End: {3}Sat, 1 Jun 2030, 22:11 CEST at the latest \(11 minutes\)$/m);
    expect(text).toMatch(/^ {2}- mobile-api: https:\/\/api\.shop\.example\/m\/v3$/m);
  });

  it('refuses without a rehearsal to take the number from', () => {
    expect(() => announceText(file, opts())).toThrow(/no successful rehearsal of "shop-window"/);
  });

  it('--at must carry its zone and be in the future; --margin must be a duration or a share', () => {
    const now = Date.parse('2030-01-01T00:00Z');
    expect(parseAt('2030-06-01T22:00+02:00', now).toISOString()).toBe('2030-06-01T20:00:00.000Z');
    expect(parseAt('2030-06-01 20:00Z', now).toISOString()).toBe('2030-06-01T20:00:00.000Z');
    expect(() => parseAt('2030-06-01T20:00', now)).toThrow(/expected a time with its zone/);
    expect(() => parseAt('tomorrow', now)).toThrow(/expected a time with its zone/);
    expect(() => parseAt('2029-06-01T20:00Z', now)).toThrow(/has passed/);
    expect(parseMargin('10m', 1000).ms).toBe(600_000);
    expect(parseMargin('50%', 60_000).ms).toBe(30_000);
    expect(() => parseMargin('lots', 1000)).toThrow(/expected a duration/);
  });
});
