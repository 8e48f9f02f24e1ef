import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  activeJobLines,
  bytesOf,
  contentOf,
  DEFAULT_MARKER,
  disableJobs,
  enableJobs,
  isJobLine,
  markedLines,
  matchingProcesses,
  parseRead,
  parseTimerStates,
  readScript,
  timerUnit,
  writeScript,
} from '../../../src/steps/ops/crontab.js';

const CRONTAB = [
  '# app1: shop application host',
  'MAILTO=ops@example.com',
  'SHELL = /bin/bash',
  '*/5 * * * * cd /srv/app && ./bin/sync --since "$(date +\\%F)" >> /var/log/sync.log 2>&1',
  '',
  '  @reboot /srv/app/bin/warm-cache; touch /tmp/x',
  '#0 3 * * * /srv/app/bin/disabled-by-hand',
  '0 3 * * * /srv/app/bin/cleanup-sessions --older-than 7d',
  '',
].join('\n');

function sh(script: string, input?: string, cwd?: string): string {
  return execFileSync('bash', ['-c', script], {
    encoding: 'utf8',
    stdio: 'pipe',
    ...(input !== undefined ? { input } : {}),
    ...(cwd ? { cwd } : {}),
  });
}

describe('crontab text', () => {
  it('tells jobs from comments, blanks and environment assignments', () => {
    expect(isJobLine('*/5 * * * * run')).toBe(true);
    expect(isJobLine('  @reboot run')).toBe(true);
    expect(isJobLine('# comment')).toBe(false);
    expect(isJobLine('   ')).toBe(false);
    expect(isJobLine('MAILTO=ops@example.com')).toBe(false);
    expect(isJobLine('SHELL = /bin/bash')).toBe(false);
    expect(activeJobLines(CRONTAB)).toEqual([4, 6, 8]);
  });

  it('disable comments out exactly the jobs and enable is its exact inverse', () => {
    const d = disableJobs(CRONTAB);
    expect(d.changed).toBe(3);
    expect(activeJobLines(d.content)).toEqual([]);
    expect(markedLines(d.content)).toEqual([4, 6, 8]);
    // The hand-disabled job stays as it was: only our marker is ever removed.
    expect(d.content).toContain('\n#0 3 * * * /srv/app/bin/disabled-by-hand\n');
    const e = enableJobs(d.content);
    expect(e.changed).toBe(3);
    expect(e.content).toBe(CRONTAB);
    expect(disableJobs(d.content).changed).toBe(0);
  });

  it('keeps a file without a trailing newline, and CRLF lines, byte for byte', () => {
    for (const text of ['0 * * * * a', '0 * * * * a\r\n1 * * * * b\r\n']) {
      expect(enableJobs(disableJobs(text).content).content).toBe(text);
    }
  });

  it('honours a custom marker', () => {
    const d = disableJobs('0 * * * * a\n', '#off# ');
    expect(d.content).toBe('#off# 0 * * * * a\n');
    expect(enableJobs(d.content, DEFAULT_MARKER).changed).toBe(0);
    expect(enableJobs(d.content, '#off# ').content).toBe('0 * * * * a\n');
  });

  it('journals text when it is UTF-8 and base64 when it is not', () => {
    const utf8 = Buffer.from('0 * * * * écho\n', 'utf8');
    expect(contentOf(utf8).text).toBe('0 * * * * écho\n');
    expect(bytesOf(contentOf(utf8))!.equals(utf8)).toBe(true);
    const latin1 = Buffer.from([0x30, 0x20, 0xe9, 0x0a]);
    const c = contentOf(latin1);
    expect(c.text).toBeUndefined();
    expect(bytesOf(c)!.equals(latin1)).toBe(true);
    expect(contentOf(undefined)).toEqual({ exists: false });
  });

  it('names timers and parses their states', () => {
    expect(timerUnit('sync')).toBe('sync.timer');
    expect(timerUnit('sync.timer')).toBe('sync.timer');
    expect(parseTimerStates('a.timer active\nb.timer inactive\nc.timer \n')).toEqual(
      new Map([
        ['a.timer', 'active'],
        ['b.timer', 'inactive'],
        ['c.timer', 'unknown'],
      ]),
    );
  });

  it('finds running jobs by pattern but never the ps command itself', () => {
    const ps = [
      '  12 /usr/sbin/cron -f',
      ' 345 /bin/sh -c /srv/app/bin/sync --since x',
      ' 346 bash -c ps -eo pid=,args= bin/sync',
      '',
    ].join('\n');
    expect(matchingProcesses(ps, /bin\/sync/)).toEqual([
      { pid: 345, args: '/bin/sh -c /srv/app/bin/sync --since x' },
    ]);
  });
});

describe('read and write scripts', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips a cron file byte for byte, keeping its mode, with a path full of shell metacharacters', () => {
    dir = mkdtempSync(join(tmpdir(), 'ops-cron-'));
    // Run from dir: a path that got executed would create dir/executed.
    const marker = join(dir, 'executed');
    const path = join(dir, "cron; touch executed $(touch executed) `touch executed` 'q'");
    const bytes = Buffer.concat([Buffer.from(CRONTAB), Buffer.from([0xff, 0x0a])]);
    writeFileSync(path, bytes);
    chmodSync(path, 0o640);
    const read = parseRead(sh(readScript({ type: 'file', path }), undefined, dir))!;
    expect(read.exists).toBe(true);
    expect(bytesOf(read)!.equals(bytes)).toBe(true);

    const changed = Buffer.from(disableJobs(CRONTAB).content);
    sh(writeScript({ type: 'file', path }, true), changed.toString('base64'), dir);
    expect(readFileSync(path).equals(changed)).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o640);
    sh(writeScript({ type: 'file', path }, true), bytes.toString('base64'), dir);
    expect(readFileSync(path).equals(bytes)).toBe(true);
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(`${path}.cutover-tmp`)).toBe(false);
  });

  it('reports a missing file as absent and removes it when restoring "absent"', () => {
    dir = mkdtempSync(join(tmpdir(), 'ops-cron-'));
    const path = join(dir, 'nothing');
    expect(parseRead(sh(readScript({ type: 'file', path })))).toEqual({ exists: false });
    writeFileSync(path, 'x');
    sh(writeScript({ type: 'file', path }, false));
    expect(existsSync(path)).toBe(false);
  });

  it('fails (and leaves the file alone) when the content does not decode', () => {
    dir = mkdtempSync(join(tmpdir(), 'ops-cron-'));
    const path = join(dir, 'cron');
    writeFileSync(path, 'original\n');
    expect(() => sh(writeScript({ type: 'file', path }, true), '!!! not base64 !!!')).toThrow();
    expect(readFileSync(path, 'utf8')).toBe('original\n');
  });

  it('reads and installs a user crontab through the crontab command', () => {
    dir = mkdtempSync(join(tmpdir(), 'ops-cron-'));
    const bin = join(dir, 'bin');
    const spool = join(dir, 'spool');
    // A stand-in for crontab(1): -l prints, -r removes, FILE installs.
    execFileSync('mkdir', ['-p', bin]);
    writeFileSync(
      join(bin, 'crontab'),
      `#!/bin/sh\ncase "$1" in -l) [ -f '${spool}' ] && exec cat '${spool}'; echo "no crontab for test" >&2; exit 1;; -r) rm -f '${spool}';; *) cp "$1" '${spool}';; esac\n`,
    );
    chmodSync(join(bin, 'crontab'), 0o755);
    const env = `PATH='${bin}':$PATH; `;
    expect(parseRead(sh(env + readScript({ type: 'crontab' })))).toEqual({ exists: false });
    sh(env + writeScript({ type: 'crontab' }, true), Buffer.from(CRONTAB).toString('base64'));
    expect(readFileSync(spool, 'utf8')).toBe(CRONTAB);
    expect(parseRead(sh(env + readScript({ type: 'crontab' })))!.text).toBe(CRONTAB);
    sh(env + writeScript({ type: 'crontab' }, false));
    expect(existsSync(spool)).toBe(false);
  });
});
