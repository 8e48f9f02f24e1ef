// The demo shop: a web route and a "mobile API" route, both reading the database through the DNS
// name the cutover flips (or, when its route file says `proxy`, through HAProxy), with a file-backed maintenance mode that can (the trap from the field
// report) cover only the web route, and a bypass for a header token or a client address range.
import { Resolver } from 'node:dns/promises';
import http from 'node:http';
import mysql, { type Pool, type RowDataPacket } from 'mysql2/promise';
import type { MaintenanceScope } from './config.js';
import { readDbRoute, readMaintenance, writeMaintenance } from './maintenance.js';

export interface DemoAppOptions {
  dnsPort: number;
  dbPort: number;
  recordName: string;
  dbUser: string;
  dbPassword: string;
  dbName: string;
  maintenanceFile: string;
  bypassHeader: string;
  bypassToken: string;
  bypassCidr: string;
  /** HAProxy's address (same port): used instead of the DNS name while routeFile says `proxy`. */
  proxyHost?: string;
  /** A file holding `dns` (default) or `proxy`, read on every query (app-ctl db dns|proxy writes it). */
  routeFile?: string;
}

interface Product {
  id: number;
  sku: string;
  name: string;
  price_cents: number;
  stock: number;
}

const TRANSIENT = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ER_CONNECTION_KILLED',
  'ER_SERVER_SHUTDOWN',
]);

function ipv4ToInt(ip: string): number | undefined {
  const m = /^(?:::ffff:)?(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  if (!m) return undefined;
  return m.slice(1).reduce((acc, o) => acc * 256 + Number(o), 0);
}

export function inCidr(ip: string, cidr: string): boolean {
  const [base, bitsText] = cidr.split('/');
  const a = ipv4ToInt(ip);
  const b = ipv4ToInt(base ?? '');
  const bits = Number(bitsText ?? 32);
  if (a === undefined || b === undefined) return false;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return (a & mask) >>> 0 === (b & mask) >>> 0;
}

/** Resolves the database name with the sandbox DNS, caches it for its TTL, keeps one pool per address. */
class Database {
  private readonly resolver: Resolver;
  private cached?: { address: string; expires: number };
  private readonly pools = new Map<string, Pool>();

  constructor(private readonly o: DemoAppOptions) {
    this.resolver = new Resolver({ timeout: 1000, tries: 2 });
    this.resolver.setServers([`127.0.0.1:${o.dnsPort}`]);
  }

  async address(): Promise<string> {
    if (this.o.proxyHost && readDbRoute(this.o.routeFile) === 'proxy') return this.let(this.o.proxyHost);
    if (this.cached && Date.now() < this.cached.expires) return this.cached.address;
    const answers = await this.resolver.resolve4(this.o.recordName, { ttl: true });
    const first = answers[0];
    if (!first) throw new Error(`${this.o.recordName} has no address`);
    this.cached = { address: first.address, expires: Date.now() + first.ttl * 1000 };
    return this.let(first.address);
  }

  /** After a flip (or a change of route), let go of the other pools: they would keep writing there. */
  private let(address: string): string {
    for (const [addr, pool] of this.pools) {
      if (addr !== address) {
        this.pools.delete(addr);
        pool.end().catch(() => undefined);
      }
    }
    return address;
  }

  private pool(address: string): Pool {
    let p = this.pools.get(address);
    if (!p) {
      p = mysql.createPool({
        host: address,
        port: this.o.dbPort,
        user: this.o.dbUser,
        password: this.o.dbPassword,
        database: this.o.dbName,
        connectionLimit: 5,
        // Idle connections go within seconds: what stays on the old server after maintenance starts is
        // then traffic that maintenance did not stop, which is what the drain step must find.
        maxIdle: 2,
        idleTimeout: 2000,
        connectTimeout: 2000,
      });
      // A pooled connection killed while idle (the cutover's drain does that) must not crash the app.
      p.on('connection', (conn) =>
        (conn as unknown as { on: (e: string, f: () => void) => void }).on('error', () => undefined),
      );
      this.pools.set(address, p);
    }
    return p;
  }

  async query<T>(sql: string): Promise<{ rows: T[]; address: string }> {
    for (let attempt = 0; ; attempt++) {
      const address = await this.address();
      try {
        const [rows] = await this.pool(address).query<RowDataPacket[]>(sql);
        return { rows: rows as unknown as T[], address };
      } catch (e) {
        const err = e as { code?: string; fatal?: boolean };
        if (attempt > 0 || !(err.fatal || TRANSIENT.has(err.code ?? ''))) throw e;
        // The server went away under us (killed, restarted, fenced): re-resolve and try once more.
        this.cached = undefined;
      }
    }
  }

  async reset(): Promise<void> {
    this.cached = undefined;
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
  }
}

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export interface DemoApp {
  server: http.Server;
  close(): Promise<void>;
}

export function createDemoApp(o: DemoAppOptions): DemoApp {
  const db = new Database(o);
  const bypassHeader = o.bypassHeader.toLowerCase();

  async function catalogue() {
    const [products, server] = await Promise.all([
      db.query<Product>(`SELECT id, sku, name, price_cents, stock FROM \`${o.dbName}\`.products ORDER BY id`),
      db.query<{ server_id: number; read_only: number }>(
        'SELECT @@server_id AS server_id, @@read_only AS read_only',
      ),
    ]);
    return {
      products: products.rows,
      address: products.address,
      serverId: Number(server.rows[0]?.server_id),
    };
  }

  function send(
    res: http.ServerResponse,
    status: number,
    type: 'json' | 'html',
    body: unknown,
    headers: Record<string, string> = {},
  ) {
    const text = type === 'json' ? `${JSON.stringify(body)}\n` : String(body);
    res.writeHead(status, {
      'content-type': type === 'json' ? 'application/json' : 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      ...headers,
    });
    res.end(text);
  }

  async function readJson(req: http.IncomingMessage): Promise<any> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8').trim();
    return text ? JSON.parse(text) : {};
  }

  const notifications: string[] = [];
  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://app');
    const path = url.pathname;
    if (path === '/_admin/maintenance') {
      if (req.method === 'GET') return send(res, 200, 'json', readMaintenance(o.maintenanceFile));
      if (req.method === 'POST' || req.method === 'PUT') {
        let body: { enabled?: unknown; scope?: unknown };
        try {
          body = await readJson(req);
        } catch {
          return send(res, 400, 'json', {
            error: 'expected JSON {"enabled": true|false, "scope": "all"|"web"}',
          });
        }
        if (
          typeof body.enabled !== 'boolean' ||
          (body.scope !== undefined && body.scope !== 'all' && body.scope !== 'web')
        ) {
          return send(res, 400, 'json', {
            error: 'expected JSON {"enabled": true|false, "scope": "all"|"web"}',
          });
        }
        const state = { enabled: body.enabled, scope: (body.scope ?? 'all') as MaintenanceScope };
        writeMaintenance(o.maintenanceFile, state);
        return send(res, 200, 'json', state);
      }
    }
    // The team's chat channel: runbook notifications land here (GET lists them).
    if (path === '/_admin/notify') {
      if (req.method === 'POST') {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        notifications.push(Buffer.concat(chunks).toString('utf8').slice(0, 4096));
        if (notifications.length > 200) notifications.shift();
        return send(res, 200, 'json', { ok: true });
      }
      return send(res, 200, 'json', notifications);
    }
    if (path === '/_admin/reset' && req.method === 'POST') {
      await db.reset();
      return send(res, 200, 'json', { ok: true });
    }
    if (path === '/healthz') {
      // Health checks stay outside maintenance, as a load balancer's would.
      try {
        const c = await db.query<{ server_id: number }>('SELECT @@server_id AS server_id');
        return send(res, 200, 'json', {
          ok: true,
          db: { address: c.address, serverId: Number(c.rows[0]?.server_id) },
        });
      } catch (e) {
        return send(res, 503, 'json', { ok: false, error: (e as Error).message });
      }
    }
    const route = path === '/' ? 'web' : path === '/api/mobile/products' ? 'mobile' : undefined;
    if (!route || (req.method !== 'GET' && req.method !== 'HEAD'))
      return send(res, 404, 'json', { error: 'not found' });

    const m = readMaintenance(o.maintenanceFile);
    const covered = m.enabled && (m.scope === 'all' || route === 'web');
    const bypassed =
      covered &&
      ((o.bypassToken !== '' && req.headers[bypassHeader] === o.bypassToken) ||
        inCidr(req.socket.remoteAddress ?? '', o.bypassCidr));
    const extra: Record<string, string> = bypassed ? { 'x-maintenance-bypass': '1' } : {};
    if (covered && !bypassed) {
      const retry = { 'retry-after': '60' };
      if (route === 'mobile')
        return send(
          res,
          503,
          'json',
          { error: 'maintenance', message: 'The shop API is in maintenance; please retry shortly.' },
          retry,
        );
      return send(
        res,
        503,
        'html',
        '<!doctype html><title>Maintenance</title><h1>Down for maintenance</h1><p>The shop is in maintenance and will be back shortly.</p>\n',
        retry,
      );
    }

    let data: Awaited<ReturnType<typeof catalogue>>;
    try {
      data = await catalogue();
    } catch (e) {
      const msg = (e as Error).message;
      if (route === 'mobile') return send(res, 500, 'json', { error: 'database', message: msg }, extra);
      return send(
        res,
        500,
        'html',
        `<!doctype html><title>Error</title><h1>Database error</h1><p>${esc(msg)}</p>\n`,
        extra,
      );
    }
    const served = {
      'x-served-by-db': data.address,
      'x-served-by-server-id': String(data.serverId),
      ...extra,
    };
    if (route === 'mobile') {
      return send(
        res,
        200,
        'json',
        { products: data.products, servedBy: { address: data.address, serverId: data.serverId } },
        served,
      );
    }
    const rows = data.products
      .map(
        (p) =>
          `<tr><td>${esc(p.sku)}</td><td>${esc(p.name)}</td><td>${(p.price_cents / 100).toFixed(2)}</td><td>${p.stock}</td></tr>`,
      )
      .join('\n');
    return send(
      res,
      200,
      'html',
      `<!doctype html><title>Sandbox shop</title><h1>Sandbox shop</h1>\n<table><tr><th>SKU</th><th>Product</th><th>Price</th><th>Stock</th></tr>\n${rows}\n</table>\n<p>served by database ${esc(data.address)} (server_id ${data.serverId})</p>\n`,
      served,
    );
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      console.error('[app] request failed:', e);
      if (!res.headersSent) send(res, 500, 'json', { error: String(e) });
      else res.end();
    });
  });
  return {
    server,
    async close() {
      await db.reset();
    },
  };
}
