import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hostCommand, hostProblem } from '../../../src/steps/ops/hosts.js';
import { shq } from '../../../src/steps/ops/common.js';

describe('hosts', () => {
  it('accepts local, names, user@host and addresses; rejects shell syntax and option-like names', () => {
    for (const ok of ['local', 'app1', 'app1.prod.internal', 'deploy@app-2', '10.0.5.10', 'fe80::1'])
      expect(hostProblem(ok)).toBeUndefined();
    for (const bad of ['app1;touch /tmp/x', '-oProxyCommand=sh', 'a b', '$(id)', 'app`id`', "a'b", 'a|b', ''])
      expect(hostProblem(bad)).toMatch(/not a host name/);
  });

  it('runs local scripts as they are', () => {
    expect(hostCommand('local', 'crontab -l')).toBe('crontab -l');
  });

  const dir = mkdtempSync(join(tmpdir(), 'ops-hosts-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('passes the host and the script to ssh as one word each: a ";" in either executes nothing locally', () => {
    // A stand-in ssh that records its argv, one per line, and runs nothing.
    const bin = join(dir, 'bin');
    execFileSync('mkdir', ['-p', bin]);
    const argvFile = join(dir, 'argv');
    writeFileSync(
      join(bin, 'ssh'),
      `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done > ${shq(argvFile)}\nexit 0\n`,
    );
    chmodSync(join(bin, 'ssh'), 0o755);
    const marker = join(dir, 'executed');
    const host = `app1;touch ${marker}`;
    const script = `cat -- ${shq(`/etc/cron.d/x; touch ${marker}`)}`;
    execFileSync('bash', ['-c', hostCommand(host, script)], {
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
    });
    expect(existsSync(marker)).toBe(false);
    const argv = readFileSync(argvFile, 'utf8').split('\n').slice(0, -1);
    expect(argv).toEqual(['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '--', host, script]);
  });

  it('quotes single quotes so the remote shell reads the same word', () => {
    const word = `it's; $(touch x) \`y\``;
    expect(execFileSync('sh', ['-c', `printf '%s' ${shq(word)}`], { encoding: 'utf8' })).toBe(word);
  });
});
