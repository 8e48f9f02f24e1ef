import { isIP } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ipFamily } from '../../../src/util/ip.js';

describe('ipFamily', () => {
  it('answers as net.isIP does', () => {
    for (const s of [
      '10.0.0.1',
      '::1',
      'fe80::1%eth0',
      '2001:db8::/32',
      'db.shop.internal',
      '${env.X}',
      '',
      '1.2.3',
      '::ffff:10.0.0.1',
    ])
      expect(ipFamily(s), s).toBe(isIP(s));
  });
});
