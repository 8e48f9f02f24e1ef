// The sandbox's two MariaDB servers shaped like RDS for MariaDB, for the tests of this folder until
// every test can use the managed sandbox profile: an `rdsadmin@localhost` account owning the
// mysql.rds_* procedures (SQL SECURITY DEFINER, RDS's names and arguments), and a tool account
// holding exactly what an RDS master user holds — no SUPER, CONNECTION ADMIN, READ_ONLY ADMIN,
// REPLICATION SLAVE ADMIN, no global EXECUTE — with EXECUTE granted per procedure. MariaDB's own
// privilege checks enforce it. Installed as root over the socket, outside the binlog.
import type { Connection } from 'mysql2/promise';
import { rootConnection } from '../../../src/sandbox/mariadb.js';
import type { DatabaseConfig } from '../../../src/runbook/schema.js';
import type { Env } from './harness.js';

export const MANAGED_USER = 'rdsmaster';
export const MANAGED_PASSWORD = 'rds-master-pw';

export const RDS_PROCEDURES = [
  'rds_kill',
  'rds_kill_query',
  'rds_stop_replication',
  'rds_start_replication',
  'rds_replica_status',
  'rds_reset_external_master',
  'rds_set_external_master_gtid',
  'rds_show_configuration',
  'rds_set_configuration',
] as const;

const MASTER_GRANTS =
  'SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, PROCESS, REFERENCES, INDEX, ALTER, SHOW DATABASES, CREATE TEMPORARY TABLES, LOCK TABLES, BINLOG MONITOR, SLAVE MONITOR, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, CREATE USER, EVENT, TRIGGER';

const D = "DEFINER='rdsadmin'@'localhost'";

// Each is one statement (no DELIMITER over the protocol).
const PROCEDURES: string[] = [
  `CREATE TABLE IF NOT EXISTS mysql.rds_configuration (name VARCHAR(100) PRIMARY KEY, value VARCHAR(100) NULL, description VARCHAR(300) NOT NULL)`,
  `INSERT IGNORE INTO mysql.rds_configuration VALUES ('binlog retention hours', NULL, 'binlog retention hours specifies the duration in hours before binary logs are automatically deleted.')`,
  `CREATE ${D} PROCEDURE mysql.rds_kill(IN thread BIGINT UNSIGNED) SQL SECURITY DEFINER
   BEGIN
     IF (SELECT USER FROM information_schema.PROCESSLIST WHERE ID = thread) = 'rdsadmin' THEN
       SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'ERROR (RDS): CANNOT KILL RDSADMIN SESSION';
     END IF;
     SET @rds_sql = CONCAT('KILL CONNECTION ', thread);
     PREPARE s FROM @rds_sql; EXECUTE s; DEALLOCATE PREPARE s;
   END`,
  `CREATE ${D} PROCEDURE mysql.rds_kill_query(IN thread BIGINT UNSIGNED) SQL SECURITY DEFINER
   BEGIN
     IF (SELECT USER FROM information_schema.PROCESSLIST WHERE ID = thread) = 'rdsadmin' THEN
       SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'ERROR (RDS): CANNOT KILL RDSADMIN QUERY';
     END IF;
     SET @rds_sql = CONCAT('KILL QUERY ', thread);
     PREPARE s FROM @rds_sql; EXECUTE s; DEALLOCATE PREPARE s;
   END`,
  `CREATE ${D} PROCEDURE mysql.rds_stop_replication() SQL SECURITY DEFINER BEGIN STOP SLAVE; END`,
  `CREATE ${D} PROCEDURE mysql.rds_start_replication() SQL SECURITY DEFINER BEGIN START SLAVE; END`,
  `CREATE ${D} PROCEDURE mysql.rds_replica_status() SQL SECURITY DEFINER BEGIN SHOW SLAVE STATUS; END`,
  `CREATE ${D} PROCEDURE mysql.rds_reset_external_master() SQL SECURITY DEFINER BEGIN STOP SLAVE; RESET SLAVE ALL; END`,
  `CREATE ${D} PROCEDURE mysql.rds_set_external_master_gtid(IN host VARCHAR(255), IN port INT, IN user VARCHAR(255), IN pw VARCHAR(255), IN gtid VARCHAR(4096), IN use_ssl TINYINT) SQL SECURITY DEFINER
   BEGIN
     IF gtid <> '' THEN SET GLOBAL gtid_slave_pos = gtid; END IF;
     SET @rds_sql = CONCAT('CHANGE MASTER TO MASTER_HOST=', QUOTE(host), ', MASTER_PORT=', port, ', MASTER_USER=', QUOTE(user), ', MASTER_PASSWORD=', QUOTE(pw), ', MASTER_USE_GTID=slave_pos', IF(use_ssl, ', MASTER_SSL=1', ''));
     PREPARE s FROM @rds_sql; EXECUTE s; DEALLOCATE PREPARE s;
   END`,
  `CREATE ${D} PROCEDURE mysql.rds_show_configuration() SQL SECURITY DEFINER BEGIN SELECT name, value, description FROM mysql.rds_configuration; END`,
  `CREATE ${D} PROCEDURE mysql.rds_set_configuration(IN n VARCHAR(100), IN v VARCHAR(100)) SQL SECURITY DEFINER BEGIN UPDATE mysql.rds_configuration SET value = v WHERE name = n; END`,
];

async function onBoth(env: Env, fn: (c: Connection) => Promise<void>): Promise<void> {
  const conns = await Promise.all([
    rootConnection(env.SANDBOX_OLD_DB_SOCKET!),
    rootConnection(env.SANDBOX_NEW_DB_SOCKET!),
  ]);
  try {
    await Promise.all(
      conns.map(async (c) => {
        await c.query('SET SESSION sql_log_bin = 0');
        await fn(c);
      }),
    );
  } finally {
    await Promise.all(conns.map((c) => c.end().catch(() => undefined)));
  }
}

const grantTo = (procs: readonly string[]) =>
  procs.map((p) => `GRANT EXECUTE ON PROCEDURE mysql.${p} TO '${MANAGED_USER}'@'%'`);

/** Installs the RDS shape on both servers; `grant` lists the procedures the master user may run. */
export async function installManaged(env: Env, grant: readonly string[] = RDS_PROCEDURES): Promise<void> {
  await removeManaged(env);
  await onBoth(env, async (c) => {
    await c.query("CREATE USER 'rdsadmin'@'localhost' ACCOUNT LOCK");
    await c.query("GRANT ALL PRIVILEGES ON *.* TO 'rdsadmin'@'localhost' WITH GRANT OPTION");
    for (const sql of PROCEDURES) await c.query(sql);
    await c.query(`CREATE USER '${MANAGED_USER}'@'%' IDENTIFIED BY '${MANAGED_PASSWORD}'`);
    await c.query(`GRANT ${MASTER_GRANTS} ON *.* TO '${MANAGED_USER}'@'%' WITH GRANT OPTION`);
    for (const sql of grantTo(grant)) await c.query(sql);
  });
}

/** Changes which procedures the master user may run (REVOKE/GRANT EXECUTE per procedure). */
export async function grantProcedures(env: Env, grant: readonly string[]): Promise<void> {
  await onBoth(env, async (c) => {
    for (const p of RDS_PROCEDURES)
      await c
        .query(`REVOKE EXECUTE ON PROCEDURE mysql.${p} FROM '${MANAGED_USER}'@'%'`)
        .catch(() => undefined);
    for (const sql of grantTo(grant)) await c.query(sql);
  });
}

/** Runs SQL as root on one server (outside the binlog), e.g. to change a setting for one test. */
export async function asRoot(env: Env, role: 'old' | 'new', sql: string): Promise<void> {
  const c = await rootConnection(role === 'old' ? env.SANDBOX_OLD_DB_SOCKET! : env.SANDBOX_NEW_DB_SOCKET!);
  try {
    await c.query('SET SESSION sql_log_bin = 0');
    await c.query(sql);
  } finally {
    await c.end().catch(() => undefined);
  }
}

export async function removeManaged(env: Env): Promise<void> {
  await onBoth(env, async (c) => {
    for (const p of RDS_PROCEDURES) await c.query(`DROP PROCEDURE IF EXISTS mysql.${p}`);
    await c.query('DROP TABLE IF EXISTS mysql.rds_configuration');
    await c.query(`DROP USER IF EXISTS '${MANAGED_USER}'@'%', 'rdsadmin'@'localhost'`);
  });
}

/** old/new as the master user (the runbook's tool account on RDS). */
export function managedDatabases(env: Env): Record<string, DatabaseConfig> {
  const common = {
    port: Number(env.SANDBOX_DB_PORT),
    database: env.SANDBOX_DB_NAME!,
    connectTimeoutMs: 3000,
    user: MANAGED_USER,
    password: MANAGED_PASSWORD,
  };
  return {
    old: { name: 'old', host: env.SANDBOX_OLD_DB_HOST!, ...common },
    new: { name: 'new', host: env.SANDBOX_NEW_DB_HOST!, ...common },
  };
}
