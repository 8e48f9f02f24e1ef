// The managed-platform profile (`sandbox up --platform rds`): the same MariaDB servers, shaped the way
// RDS for MariaDB shapes them, so a real server refuses what RDS refuses. What the tool meets there:
//   - its account holds what an RDS master user holds and no more: no SUPER, CONNECTION ADMIN,
//     READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, BINLOG ADMIN, SLAVE MONITOR — so KILL of another
//     user's session, SET GLOBAL read_only, STOP SLAVE and SHOW SLAVE STATUS are refused by MariaDB's
//     own privilege checks;
//   - `rdsadmin` owns mysql.rds_* procedures with RDS's names, arguments and effects (SQL SECURITY
//     DEFINER), granted to the tool account one by one with EXECUTE; like RDS they record what they
//     do in mysql.rds_history / mysql.rds_replication_status (binlogged writes: review M10);
//   - an rdsadmin event writes a heartbeat row on a primary and rotates the binary log every few
//     seconds (review M1), so every "no writes" guard meets what it meets in production;
//   - replicas ignore mysql.rds_% tables (RDS's Replicate_Ignore_Table) and gtid_strict_mode is off.
// How close each piece is to the real platform is written down in docs/managed-platform.md.
import { ACCOUNTS, DB_NAME } from './config.js';

export type Platform = 'self' | 'rds';
export type GtidMode = 'on' | 'off';

export interface DbProfile {
  platform: Platform;
  /** off: the replica follows by binlog file/position (MASTER_USE_GTID=no), as on many RDS instances. */
  gtid: GtidMode;
  /** rds: seconds between rdsadmin heartbeat writes and binlog rotations. */
  heartbeatSeconds: number;
}

export const DEFAULT_PROFILE: DbProfile = { platform: 'self', gtid: 'on', heartbeatSeconds: 2 };

export const RDSADMIN = { user: 'rdsadmin', host: 'localhost' } as const;

/** What the RDS for MariaDB master user is granted globally (AWS "Master user account privileges"). */
export const RDS_MASTER_PRIVILEGES = [
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'CREATE',
  'DROP',
  'RELOAD',
  'PROCESS',
  'REFERENCES',
  'INDEX',
  'ALTER',
  'SHOW DATABASES',
  'CREATE TEMPORARY TABLES',
  'LOCK TABLES',
  'REPLICATION SLAVE',
  'BINLOG MONITOR',
  'CREATE VIEW',
  'SHOW VIEW',
  'CREATE ROUTINE',
  'ALTER ROUTINE',
  'CREATE USER',
  'EVENT',
  'TRIGGER',
] as const;

/** Procedures the tool account may EXECUTE (one grant each, so a test can take one away). */
export const RDS_PROCEDURES = [
  'rds_kill',
  'rds_kill_query',
  'rds_stop_replication',
  'rds_start_replication',
  'rds_reset_external_master',
  'rds_set_external_master',
  'rds_set_external_master_gtid',
  'rds_replica_status',
  'rds_set_configuration',
  'rds_show_configuration',
] as const;

const q = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
const DEFINER = `DEFINER=${q(RDSADMIN.user)}@${q(RDSADMIN.host)}`;

/** Statements run one by one (procedure bodies hold semicolons), as root with sql_log_bin = 0. */
export function rdsPlatformSql(heartbeatSeconds: number): string[] {
  const { tool, app, repl } = ACCOUNTS;
  const tables = [
    `CREATE TABLE mysql.rds_heartbeat2 (id INT NOT NULL PRIMARY KEY, value BIGINT) ENGINE=InnoDB`,
    `CREATE TABLE mysql.rds_history (action_timestamp TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), called_by_user VARCHAR(80), action VARCHAR(40), mysql_version VARCHAR(60), master_host VARCHAR(255), master_port INT, master_user VARCHAR(80), master_log_file VARCHAR(80), master_log_pos BIGINT, master_gtid VARCHAR(255)) ENGINE=InnoDB`,
    `CREATE TABLE mysql.rds_replication_status (action_timestamp TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), called_by_user VARCHAR(80), action VARCHAR(40), mysql_version VARCHAR(60), master_host VARCHAR(255), master_port INT) ENGINE=InnoDB`,
    `CREATE TABLE mysql.rds_configuration (name VARCHAR(100) NOT NULL PRIMARY KEY, value VARCHAR(100), description VARCHAR(300)) ENGINE=InnoDB`,
    // Set, as the Aurora setup guide asks before binlog replication; a test takes it away.
    `INSERT INTO mysql.rds_configuration VALUES ('binlog retention hours', '24', 'binlog retention hours specifies the duration in hours before binary logs are automatically deleted.')`,
  ];
  const record = (action: string, extra = '') =>
    `INSERT INTO mysql.rds_history (called_by_user, action, mysql_version${extra ? `, ${extra.split('|')[0]}` : ''}) VALUES (USER(), '${action}', VERSION()${extra ? `, ${extra.split('|')[1]}` : ''}); INSERT INTO mysql.rds_replication_status (called_by_user, action, mysql_version) VALUES (USER(), '${action}', VERSION());`;
  const proc = (name: string, args: string, body: string) =>
    `CREATE ${DEFINER} PROCEDURE mysql.${name}(${args}) SQL SECURITY DEFINER\nBEGIN\n${body}\nEND`;
  const run = (expr: string) =>
    `SET @rds_sql = ${expr}; PREPARE rds_stmt FROM @rds_sql; EXECUTE rds_stmt; DEALLOCATE PREPARE rds_stmt;`;
  const changeMaster = (tail: string) =>
    `CONCAT('CHANGE MASTER TO MASTER_HOST=', QUOTE(host), ', MASTER_PORT=', port, ', MASTER_USER=', QUOTE(user_name), ', MASTER_PASSWORD=', QUOTE(password), ', MASTER_SSL=', IF(ssl_encryption = 1, 1, 0), ', MASTER_CONNECT_RETRY=1, ', ${tail})`;
  const refuseRdsadmin = `IF (SELECT USER FROM information_schema.PROCESSLIST WHERE ID = thread) = '${RDSADMIN.user}' THEN SIGNAL SQLSTATE 'HY000' SET MESSAGE_TEXT = 'ERROR (RDS): CANNOT KILL RDSADMIN SESSION', MYSQL_ERRNO = 1095; END IF;`;
  const procedures = [
    proc('rds_kill', 'IN thread BIGINT', `${refuseRdsadmin}\n${run(`CONCAT('KILL CONNECTION ', thread)`)}`),
    proc('rds_kill_query', 'IN thread BIGINT', `${refuseRdsadmin}\n${run(`CONCAT('KILL QUERY ', thread)`)}`),
    proc('rds_stop_replication', '', `STOP SLAVE;\n${record('stop slave')}`),
    proc('rds_start_replication', '', `START SLAVE;\n${record('start slave')}`),
    proc('rds_reset_external_master', '', `STOP SLAVE;\nRESET SLAVE ALL;\n${record('reset slave')}`),
    proc(
      'rds_set_external_master',
      'IN host VARCHAR(255), IN port INT, IN user_name VARCHAR(255), IN password VARCHAR(255), IN mysql_binary_log_file_name VARCHAR(255), IN mysql_binary_log_file_location BIGINT, IN ssl_encryption TINYINT',
      `${run(changeMaster(`'MASTER_USE_GTID=no, MASTER_LOG_FILE=', QUOTE(mysql_binary_log_file_name), ', MASTER_LOG_POS=', mysql_binary_log_file_location`))}\n${record('set master', 'master_host, master_port, master_user, master_log_file, master_log_pos|host, port, user_name, mysql_binary_log_file_name, mysql_binary_log_file_location')}`,
    ),
    proc(
      'rds_set_external_master_gtid',
      'IN host VARCHAR(255), IN port INT, IN user_name VARCHAR(255), IN password VARCHAR(255), IN gtid VARCHAR(255), IN ssl_encryption TINYINT',
      `IF gtid IS NOT NULL AND gtid <> '' THEN SET GLOBAL gtid_slave_pos = gtid; END IF;\n${run(changeMaster(`'MASTER_USE_GTID=slave_pos'`))}\n${record('set master', 'master_host, master_port, master_user, master_gtid|host, port, user_name, gtid')}`,
    ),
    proc('rds_replica_status', '', 'SHOW SLAVE STATUS;'),
    proc(
      'rds_set_configuration',
      'IN name VARCHAR(100), IN value VARCHAR(100)',
      `IF NOT EXISTS (SELECT 1 FROM mysql.rds_configuration c WHERE c.name = name) THEN SIGNAL SQLSTATE 'HY000' SET MESSAGE_TEXT = 'ERROR (RDS): unknown configuration name'; END IF;\nUPDATE mysql.rds_configuration c SET c.value = value WHERE c.name = name;`,
    ),
    proc('rds_show_configuration', '', 'SELECT name, value, description FROM mysql.rds_configuration;'),
  ];
  // A primary (no replication running) writes its heartbeat; every server rotates its binary log.
  const heartbeat = `CREATE ${DEFINER} EVENT mysql.rds_heartbeat ON SCHEDULE EVERY ${Math.max(1, Math.round(heartbeatSeconds))} SECOND DO
BEGIN
  IF (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'SLAVES_RUNNING') = '0' THEN
    INSERT INTO mysql.rds_heartbeat2 (id, value) VALUES (1, FLOOR(UNIX_TIMESTAMP(NOW(3)) * 1000)) ON DUPLICATE KEY UPDATE value = VALUES(value);
  END IF;
  FLUSH BINARY LOGS;
END`;
  const grants = [
    `DROP USER IF EXISTS ${q(tool.user)}@'%', ${q(app.user)}@'%', ${q(repl.user)}@'%', ${q(RDSADMIN.user)}@${q(RDSADMIN.host)}`,
    // rdsadmin logs in through the socket only (no password usable from the network), as on RDS.
    `CREATE USER ${q(RDSADMIN.user)}@${q(RDSADMIN.host)} IDENTIFIED VIA unix_socket`,
    `GRANT ALL PRIVILEGES ON *.* TO ${q(RDSADMIN.user)}@${q(RDSADMIN.host)} WITH GRANT OPTION`,
    `CREATE USER ${q(tool.user)}@'%' IDENTIFIED BY ${q(tool.password)}`,
    `GRANT ${RDS_MASTER_PRIVILEGES.join(', ')} ON *.* TO ${q(tool.user)}@'%' WITH GRANT OPTION`,
    `CREATE USER ${q(app.user)}@'%' IDENTIFIED BY ${q(app.password)}`,
    `GRANT SELECT, INSERT, UPDATE, DELETE ON \`${DB_NAME}\`.* TO ${q(app.user)}@'%'`,
    `CREATE USER ${q(repl.user)}@'%' IDENTIFIED BY ${q(repl.password)}`,
    `GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO ${q(repl.user)}@'%'`,
  ];
  return [
    'SET GLOBAL event_scheduler = OFF',
    'DROP EVENT IF EXISTS mysql.rds_heartbeat',
    ...RDS_PROCEDURES.map((p) => `DROP PROCEDURE IF EXISTS mysql.${p}`),
    ...['rds_heartbeat2', 'rds_history', 'rds_replication_status', 'rds_configuration'].map(
      (t) => `DROP TABLE IF EXISTS mysql.${t}`,
    ),
    ...grants,
    ...tables,
    ...procedures,
    ...RDS_PROCEDURES.map((p) => `GRANT EXECUTE ON PROCEDURE mysql.${p} TO ${q(tool.user)}@'%'`),
    heartbeat,
    'FLUSH PRIVILEGES',
  ];
}

/** Extra mariadbd arguments of the profile. */
export function profileServerArgs(p: DbProfile): string[] {
  if (p.platform !== 'rds') return ['--gtid-strict-mode=1'];
  // The event scheduler starts at the end of the seed, once the heartbeat exists.
  return ['--gtid-strict-mode=0', '--event-scheduler=OFF', '--replicate-wild-ignore-table=mysql.rds\\_%'];
}
