import { describe, expect, it } from 'vitest';
import {
  type BinlogEvent,
  type BinlogWrites,
  describeWrites,
  groupTransactions,
  statementObjects,
} from '../../../src/steps/mysql/binlog.js';

// Rows as MariaDB 10.11 printed them for: a heartbeat into mysql.rds_heartbeat2, FLUSH BINARY LOGS,
// an app insert, ALTER USER ... ACCOUNT LOCK, the heartbeat schema, a mixed transaction.
const f1 = 'mysql-bin.000001';
const f2 = 'mysql-bin.000002';
let pos = 4;
const ev = (file: string, type: string, info: string, serverId = 1): BinlogEvent => {
  const e = {
    Log_name: file,
    Pos: pos,
    Event_type: type,
    Server_id: serverId,
    End_log_pos: pos + 40,
    Info: info,
  };
  pos += 40;
  return e;
};
const MARIA: BinlogEvent[] = [
  ev(f1, 'Format_desc', 'Server ver: 10.11.19-MariaDB-log, Binlog ver: 4'),
  ev(f1, 'Gtid', 'BEGIN GTID 0-1-2'),
  ev(
    f1,
    'Annotate_rows',
    'INSERT INTO mysql.rds_heartbeat2 VALUES (1, 1) ON DUPLICATE KEY UPDATE value = value + 1',
  ),
  ev(f1, 'Table_map', 'table_id: 31 (mysql.rds_heartbeat2)'),
  ev(f1, 'Write_rows_v1', 'table_id: 31 flags: STMT_END_F'),
  ev(f1, 'Xid', 'COMMIT /* xid=79 */'),
  ev(f1, 'Rotate', 'mysql-bin.000002;pos=4'),
  ev(f2, 'Format_desc', 'Server ver'),
  ev(f2, 'Gtid_list', '[0-1-2]'),
  ev(f2, 'Binlog_checkpoint', f2),
  ev(f2, 'Gtid', 'BEGIN GTID 0-1-3'),
  ev(f2, 'Annotate_rows', 'INSERT INTO shop.orders (customer_id) VALUES (1)'),
  ev(f2, 'Table_map', 'table_id: 28 (shop.orders)'),
  ev(f2, 'Write_rows_v1', 'table_id: 28 flags: STMT_END_F'),
  ev(f2, 'Xid', 'COMMIT /* xid=81 */'),
  ev(f2, 'Gtid', 'GTID 0-1-4'),
  ev(f2, 'Query', "ALTER USER 'app'@'%' ACCOUNT LOCK"),
  ev(f2, 'Gtid', 'GTID 0-1-5'),
  ev(f2, 'Query', 'use `shop`; CREATE TABLE IF NOT EXISTS cutover.heartbeat (id INT)'),
  ev(f2, 'Gtid', 'BEGIN GTID 0-1-6'),
  ev(f2, 'Table_map', 'table_id: 31 (mysql.rds_heartbeat2)'),
  ev(f2, 'Write_rows_v1', 'table_id: 31 flags: STMT_END_F'),
  ev(f2, 'Table_map', 'table_id: 27 (shop.customers)'),
  ev(f2, 'Write_rows_v1', 'table_id: 27 flags: STMT_END_F'),
  ev(f2, 'Xid', 'COMMIT /* xid=89 */'),
  ev(f2, 'Gtid', 'BEGIN GTID 0-1-7'),
  ev(f2, 'Query', 'use `shop`; INSERT INTO mysql.rds_history VALUES (3, 1)'),
  ev(f2, 'Xid', 'COMMIT /* xid=95 */'),
];

describe('groupTransactions (M1: service writes told apart from application writes)', () => {
  it('groups MariaDB events by GTID and classifies them by what they touch', () => {
    const t = groupTransactions(MARIA);
    expect(t.map((x) => [x.gtid, x.class, x.objects])).toEqual([
      ['0-1-2', 'service', ['mysql.rds_heartbeat2']],
      ['0-1-3', 'application', ['shop.orders']],
      ['0-1-4', 'service', ['mysql:ALTER USER']],
      ['0-1-5', 'tool', ['cutover.heartbeat']],
      ['0-1-6', 'application', ['mysql.rds_heartbeat2', 'shop.customers']],
      ['0-1-7', 'service', ['mysql.rds_history']],
    ]);
    // The end coordinate is where a replica that has the transaction stands.
    expect(t[1]!.end).toEqual({ file: f2, pos: MARIA[14]!.End_log_pos });
  });

  it('groups MySQL events (GTID and anonymous) the same way', () => {
    pos = 4;
    const mysql = [
      ev(f1, 'Gtid', "SET @@SESSION.GTID_NEXT= '3e11fa47-71ca-11e1-9e33-c80aa9429562:17'"),
      ev(f1, 'Query', 'BEGIN'),
      ev(f1, 'Table_map', 'table_id: 92 (shop.orders)'),
      ev(f1, 'Write_rows', 'table_id: 92 flags: STMT_END_F'),
      ev(f1, 'Xid', 'COMMIT /* xid=10 */'),
      ev(f1, 'Anonymous_Gtid', "SET @@SESSION.GTID_NEXT= 'ANONYMOUS'"),
      ev(f1, 'Query', "GRANT SELECT ON `shop`.* TO 'app'@'%'"),
      ev(f1, 'Anonymous_Gtid', "SET @@SESSION.GTID_NEXT= 'ANONYMOUS'"),
      ev(f1, 'Query', 'BEGIN'),
      ev(f1, 'Table_map', 'table_id: 93 (mysql.rds_heartbeat2)'),
      ev(f1, 'Write_rows', 'table_id: 93 flags: STMT_END_F'),
      ev(f1, 'Xid', 'COMMIT /* xid=11 */'),
    ];
    const t = groupTransactions(mysql);
    expect(t.map((x) => [x.gtid, x.class])).toEqual([
      ['3e11fa47-71ca-11e1-9e33-c80aa9429562:17', 'application'],
      [null, 'service'],
      [null, 'service'],
    ]);
  });

  it('statement objects: unknown statements stay application writes', () => {
    expect(statementObjects('use `shop`; UPDATE orders SET x=1')).toEqual(['shop.orders']);
    expect(statementObjects('use `shop`; DELETE FROM `mysql`.`rds_history`')).toEqual(['mysql.rds_history']);
    expect(statementObjects("SET PASSWORD FOR 'app'@'%' = PASSWORD('x')")).toEqual(['mysql:SET PASSWORD']);
    expect(statementObjects('CREATE DATABASE cutover')).toEqual(['cutover.*']);
    expect(statementObjects('use `shop`; CALL something()')).toEqual(['CALL SOMETHING()']);
  });

  it('describeWrites names each class with its tables and GTIDs', () => {
    const w: BinlogWrites = {
      from: { file: f1, pos: 4 },
      to: { file: f2, pos: 999 },
      transactions: groupTransactions(MARIA).filter((x) => x.gtid !== '0-1-5' && x.gtid !== '0-1-6'),
      rotations: 1,
      truncated: false,
    };
    expect(describeWrites(w)).toBe(
      '1 application write to shop.orders (0-1-3); 3 service writes (mysql.rds_heartbeat2, ALTER USER, mysql.rds_history) ignored; 1 binlog rotation ignored',
    );
  });
});
