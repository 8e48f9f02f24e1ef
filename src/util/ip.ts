// net.isIP on anything that is not an IPv4 address runs Node's IPv6 regular expression, whose first
// uses cost milliseconds: `validate` meets hostnames and unresolved templates where an address may go.
import { isIPv4, isIPv6 } from 'node:net';

/** 4, 6 or 0, as net.isIP; a string without ':' cannot be an IPv6 address. */
export function ipFamily(s: string): 0 | 4 | 6 {
  if (isIPv4(s)) return 4;
  return s.includes(':') && isIPv6(s) ? 6 : 0;
}
