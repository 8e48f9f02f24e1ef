// What a managed platform does to the binlog, reproduced on the self-managed sandbox: an `rdsadmin`
// account (a system user to the tool, as on RDS) writes heartbeat rows into mysql.rds_heartbeat2
// and rotates the binary log in a loop; and replication by file/position (GTID off).
import mysql, { type Connection } from 'mysql2/promise';
import { type Env, one } from './harness.js';

const RDSADMIN = { user: 'rdsadmin', password: 'rdsadmin-test' };

export function rootConnection(env: Env, role: 'old' | 'new'): Promise<Connection> {
  return mysql.createConnection({
    socketPath: role === 'old' ? env.SANDBOX_OLD_DB_SOCKET : env.SANDBOX_NEW_DB_SOCKET,
    user: 'root',
    password: '',
  });
}

/** Per server, outside the binlog: rdsadmin@localhost and the heartbeat table; strict mode off (RDS default). */
export async function preparePlatform(env: Env): Promise<void> {
  for (const role of ['old', 'new'] as const) {
    const c = await rootConnection(env, role);
    try {
      await c.query('SET SESSION sql_log_bin = 0');
      await c.query(
        `CREATE USER IF NOT EXISTS '${RDSADMIN.user}'@'localhost' IDENTIFIED BY '${RDSADMIN.password}'`,
      );
      await c.query(`GRANT ALL PRIVILEGES ON *.* TO '${RDSADMIN.user}'@'localhost'`);
      await c.query(
        'CREATE TABLE IF NOT EXISTS mysql.rds_heartbeat2 (id INT PRIMARY KEY, value BIGINT) ENGINE=InnoDB',
      );
      await c.query('SET GLOBAL gtid_strict_mode = 0');
      // As RDS replicas do: the rdsadmin tables are the server's own, never replicated into.
      const [st] = await c.query('SHOW SLAVE STATUS');
      const running = (st as unknown[]).length > 0;
      if (running) await c.query('STOP SLAVE');
      await c.query("SET GLOBAL replicate_wild_ignore_table = 'mysql.rds\\_%'");
      if (running) await c.query('START SLAVE');
    } finally {
      await c.end();
    }
  }
}

export async function restorePlatform(env: Env): Promise<void> {
  for (const role of ['old', 'new'] as const) {
    const c = await rootConnection(env, role);
    await c.query('SET GLOBAL gtid_strict_mode = 1').finally(() => c.end());
  }
}

/** The rdsadmin heartbeat + FLUSH BINARY LOGS, every `everyMs`, until stopped. Returns the rounds done. */
export function serviceWrites(env: Env, role: 'old' | 'new', everyMs = 50): { stop: () => Promise<number> } {
  let stopped = false;
  let rounds = 0;
  const loop = (async () => {
    const c = await mysql.createConnection({
      socketPath: role === 'old' ? env.SANDBOX_OLD_DB_SOCKET : env.SANDBOX_NEW_DB_SOCKET,
      user: RDSADMIN.user,
      password: RDSADMIN.password,
    });
    try {
      while (!stopped) {
        await c.query(
          'INSERT INTO mysql.rds_heartbeat2 VALUES (1, UNIX_TIMESTAMP(NOW(6)) * 1000000) ON DUPLICATE KEY UPDATE value = VALUES(value)',
        );
        if (rounds % 2 === 0) await c.query('FLUSH BINARY LOGS');
        rounds++;
        await new Promise((r) => setTimeout(r, everyMs));
      }
    } finally {
      await c.end();
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return rounds;
    },
  };
}

/** A write that bypasses every fence (read_only, account lock): an allowlisted privileged account. */
export async function privilegedWrite(env: Env, role: 'old' | 'new', totalCents: number): Promise<void> {
  const c = await mysql.createConnection({
    socketPath: role === 'old' ? env.SANDBOX_OLD_DB_SOCKET : env.SANDBOX_NEW_DB_SOCKET,
    user: RDSADMIN.user,
    password: RDSADMIN.password,
    database: env.SANDBOX_DB_NAME,
  });
  try {
    await c.query("INSERT INTO orders (customer_id, total_cents, created_at) VALUES (1, ?, '2024-06-01')", [
      totalCents,
    ]);
  } finally {
    await c.end();
  }
}

/** new replicates old by binlog file/position (Using_Gtid = No), from old's current coordinates. */
export async function useFilePosition(env: Env): Promise<void> {
  const o = await rootConnection(env, 'old');
  const n = await rootConnection(env, 'new');
  try {
    const { p } = await one<{ p: string }>(o, 'SELECT @@GLOBAL.gtid_binlog_pos AS p');
    await one(n, 'SELECT MASTER_GTID_WAIT(?, 10)', [p]);
    const st = await one<{ File: string; Position: number }>(o, 'SHOW MASTER STATUS');
    await n.query('STOP SLAVE');
    await n.query('CHANGE MASTER TO MASTER_USE_GTID=no, MASTER_LOG_FILE=?, MASTER_LOG_POS=?', [
      st.File,
      Number(st.Position),
    ]);
    await n.query('START SLAVE');
    for (let i = 0; i < 200; i++) {
      const s = await one<Record<string, string>>(n, 'SHOW SLAVE STATUS');
      if (s.Slave_IO_Running === 'Yes' && s.Slave_SQL_Running === 'Yes') {
        if (s.Using_Gtid !== 'No') throw new Error(`Using_Gtid ${s.Using_Gtid}`);
        return;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error('file/position replication did not start');
  } finally {
    await o.end();
    await n.end();
  }
}

export async function count(c: Connection, totalCents: number): Promise<number> {
  return Number(
    (await one<{ c: number }>(c, 'SELECT COUNT(*) AS c FROM orders WHERE total_cents = ?', [totalCents])).c,
  );
}
