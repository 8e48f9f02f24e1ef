import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { APT_INSTALL_COMMAND, ensureMariadb } from '../../../src/sandbox/mariadb.js';

const root = mkdtempSync(join(tmpdir(), 'cutover-sandbox-install-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('finding or installing MariaDB', () => {
  it('finds the system mariadbd and its version', async () => {
    const bins = await ensureMariadb(() => undefined);
    expect(bins.version).toMatch(/MariaDB/);
  });

  it('without binaries and without root: fails with the exact command to run', async () => {
    const err = await ensureMariadb(() => undefined, {
      searchDirs: [join(root, 'empty')],
      isRoot: false,
    }).catch((e) => e);
    expect(err).toMatchObject({ code: 'MARIADB_MISSING', exitCode: 3 });
    expect(err.message).toContain(APT_INSTALL_COMMAND);
    expect(APT_INSTALL_COMMAND).toBe('sudo apt-get install -y mariadb-server');
  });

  it("without binaries as root: installs Debian's mariadb-server with apt-get, saying so, with no service started", async () => {
    const bin = join(root, 'bin');
    const policy = join(root, 'policy-rc.d');
    const aptLog = join(root, 'apt.log');
    mkdirSync(bin);
    // A stand-in apt-get that "installs" the two binaries the sandbox needs.
    writeFileSync(
      join(bin, 'apt-get'),
      `#!/bin/sh
echo "$@" >> '${aptLog}'
[ -x '${policy}' ] && echo policy-rc.d-present >> '${aptLog}'
if [ "$1" = install ]; then
  printf '#!/bin/sh\\necho "mariadbd  Ver 10.11.99-MariaDB-fake for debian-linux-gnu"\\n' > '${bin}/mariadbd'
  printf '#!/bin/sh\\nexit 0\\n' > '${bin}/mariadb-install-db'
  chmod +x '${bin}/mariadbd' '${bin}/mariadb-install-db'
fi
`,
    );
    chmodSync(join(bin, 'apt-get'), 0o755);
    const lines: string[] = [];
    const bins = await ensureMariadb((l) => lines.push(l), {
      searchDirs: [bin],
      isRoot: true,
      policyRcPath: policy,
    });
    expect(bins).toEqual({
      server: join(bin, 'mariadbd'),
      installDb: join(bin, 'mariadb-install-db'),
      version: '10.11.99-MariaDB-fake',
    });
    expect(lines[0]).toMatch(/installing Debian's mariadb-server with apt-get/);
    const calls = readFileSync(aptLog, 'utf8');
    expect(calls).toContain('update -qq');
    expect(calls).toContain('install -y -qq --no-install-recommends mariadb-server');
    expect(calls).toContain('policy-rc.d-present');
    expect(existsSync(policy)).toBe(false);
  });
});
