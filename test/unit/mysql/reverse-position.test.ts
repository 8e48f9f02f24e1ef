import { describe, expect, it } from 'vitest';
import type { MysqlAdapter } from '../../../src/adapters/mysql.js';
import { classifyFlavor, statementsFor } from '../../../src/adapters/mysql-flavor.js';
import type { BinlogTxn } from '../../../src/steps/mysql/binlog.js';
import { changeSourceAt, gtidAfter } from '../../../src/steps/mysql/replication-reverse.js';

const server = (version: string, procs: string[] = []) => {
  const flavor = classifyFlavor({ version, rdsProcedures: procs });
  return { flavor, sql: statementsFor(flavor) } as unknown as MysqlAdapter;
};
const o = { host: 'new.db', port: 3306, user: 'repl', password: 's3cret', ssl: false };
const at = { file: 'mysql-bin.000042', pos: 1234 };

describe('C5: reverse replication by binlog file/position', () => {
  it('self-managed MariaDB: CHANGE MASTER with the coordinates and MASTER_USE_GTID=no', () => {
    const c = changeSourceAt(server('10.11.19-MariaDB'), o, at);
    expect(c.shown).toBe(
      "CHANGE MASTER TO MASTER_HOST='new.db', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='***', MASTER_LOG_FILE='mysql-bin.000042', MASTER_LOG_POS=1234, MASTER_USE_GTID=no",
    );
    expect(c.params).toEqual(['new.db', 3306, 'repl', 's3cret', 'mysql-bin.000042']);
  });
  it('MySQL 8.0.23+: CHANGE REPLICATION SOURCE with SOURCE_AUTO_POSITION=0', () => {
    expect(changeSourceAt(server('8.0.36'), o, at).shown).toBe(
      "CHANGE REPLICATION SOURCE TO SOURCE_HOST='new.db', SOURCE_PORT=3306, SOURCE_USER='repl', SOURCE_PASSWORD='***', SOURCE_LOG_FILE='mysql-bin.000042', SOURCE_LOG_POS=1234, SOURCE_AUTO_POSITION=0, GET_SOURCE_PUBLIC_KEY=1",
    );
  });
  it('RDS: rds_set_external_master(host, port, user, password, file, pos, ssl); 8.4: the _source name', () => {
    const rds = changeSourceAt(server('10.11.9-MariaDB', ['rds_kill', 'rds_set_external_master']), o, at);
    expect(rds.sql).toBe('CALL mysql.rds_set_external_master(?, ?, ?, ?, ?, ?, ?)');
    expect(rds.params).toEqual(['new.db', 3306, 'repl', 's3cret', 'mysql-bin.000042', 1234, 0]);
    expect(rds.shown).not.toContain('s3cret');
    expect(changeSourceAt(server('8.4.3', ['rds_set_external_source']), o, at).sql).toBe(
      'CALL mysql.rds_set_external_source(?, ?, ?, ?, ?, ?, ?)',
    );
  });
  it('the GTID start moves past the skipped service transactions, per domain', () => {
    const t = (gtid: string) => ({ gtid }) as BinlogTxn;
    expect(gtidAfter('0-1-100,1-1-7', [t('0-2-101'), t('0-2-102')])).toBe('0-2-102,1-1-7');
    expect(gtidAfter('0-1-100', [])).toBe('0-1-100');
  });
});
