import dgram from 'node:dgram';
import net from 'node:net';
import { SandboxError } from './errors.js';

export interface PortClaim {
  what: string;
  host: string;
  port: number;
  proto: 'tcp' | 'udp';
}

function tryBindTcp(host: string, port: number): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((res) => {
    const srv = net.createServer();
    srv.once('error', (e) => res(e as NodeJS.ErrnoException));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => res(undefined)));
  });
}

function tryBindUdp(host: string, port: number): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((res) => {
    const sock = dgram.createSocket('udp4');
    sock.once('error', (e) => {
      sock.close();
      res(e as NodeJS.ErrnoException);
    });
    sock.bind({ address: host, port, exclusive: true }, () => sock.close(() => res(undefined)));
  });
}

/** Fails on the first claim something else holds, naming the port and address (exit 2). */
export async function assertPortsFree(claims: PortClaim[]): Promise<void> {
  for (const c of claims) {
    const err = c.proto === 'tcp' ? await tryBindTcp(c.host, c.port) : await tryBindUdp(c.host, c.port);
    if (!err) continue;
    if (err.code === 'EADDRINUSE' || err.code === 'EACCES') {
      throw new SandboxError(
        'PORT_IN_USE',
        `${c.proto}/${c.port} on ${c.host} (${c.what}) is ${err.code === 'EACCES' ? 'not allowed' : 'already in use by another process'}; free it or pick another port (e.g. --${portFlag(c.what)}-port)`,
        { badInput: true },
      );
    }
    if (err.code === 'EADDRNOTAVAIL') {
      throw new SandboxError(
        'ADDRESS_UNAVAILABLE',
        `cannot bind ${c.host} (${c.what}): the loopback interface does not answer for 127.0.0.0/8 on this machine`,
        { badInput: true },
      );
    }
    throw new SandboxError(
      'PORT_CHECK_FAILED',
      `cannot check ${c.proto}/${c.port} on ${c.host}: ${err.message}`,
    );
  }
}

function portFlag(what: string): string {
  if (what.startsWith('MariaDB')) return 'db';
  if (what.startsWith('AWS')) return 'aws';
  if (what.startsWith('DNS')) return 'dns';
  return 'app';
}

export function tcpAnswers(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((res) => {
    const sock = net.connect({ host, port });
    const done = (ok: boolean) => {
      sock.destroy();
      res(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}
