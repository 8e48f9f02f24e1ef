import { describe, expect, it } from 'vitest';
import {
  cachedTtl,
  changeLine,
  changesToReach,
  concernedRecords,
  desiredRecord,
  fqdn,
  type RecordSet,
  recordsEqual,
} from '../../../src/steps/aws/records.js';

const a = (values: string[], ttl = 60, extra: Partial<RecordSet> = {}): RecordSet => ({
  Name: 'db.shop.internal.',
  Type: 'A',
  TTL: ttl,
  ResourceRecords: values.map((Value) => ({ Value })),
  ...extra,
});
const cname = (v: string, ttl = 300): RecordSet => ({
  Name: 'db.shop.internal.',
  Type: 'CNAME',
  TTL: ttl,
  ResourceRecords: [{ Value: v }],
});

describe('names and equality', () => {
  it('normalizes names', () => {
    expect(fqdn('DB.Shop.Internal')).toBe('db.shop.internal.');
    expect(fqdn('\\052.shop.internal.')).toBe('*.shop.internal.');
  });
  it('compares record sets regardless of value order, case and trailing dots', () => {
    expect(recordsEqual(a(['10.0.0.2', '10.0.0.1']), a(['10.0.0.1', '10.0.0.2']))).toBe(true);
    expect(recordsEqual(cname('Old.Example.com.'), cname('old.example.com'))).toBe(true);
    expect(recordsEqual(a(['10.0.0.1'], 60), a(['10.0.0.1'], 5))).toBe(false);
  });
});

describe('flip change batches', () => {
  it('UPSERTs the new value, keeping the TTL unless given and the routing policy', () => {
    const old = a(['127.0.0.2'], 60, { SetIdentifier: 'blue', Weight: 100 });
    const d = desiredRecord([old], {
      name: 'db.shop.internal',
      type: 'A',
      values: ['127.0.0.3'],
      setIdentifier: 'blue',
    });
    expect(d).toEqual(a(['127.0.0.3'], 60, { SetIdentifier: 'blue', Weight: 100 }));
    const changes = changesToReach([old], [d]);
    expect(changes).toEqual([{ Action: 'UPSERT', ResourceRecordSet: d }]);
    expect(changeLine('/hostedzone/Z1', changes[0]!, [old])).toBe(
      'would upsert db.shop.internal A [blue] in zone Z1 (127.0.0.2 TTL 60 [blue weight 100] → 127.0.0.3 TTL 60 [blue weight 100])',
    );
  });

  it('replaces a CNAME by an A record in one batch, DELETE first, and undoes it exactly', () => {
    const at = [
      cname('old-db.rds.amazonaws.com'),
      { Name: 'db.shop.internal.', Type: 'TXT', TTL: 60, ResourceRecords: [{ Value: '"x"' }] },
    ];
    const concerned = concernedRecords(at, 'db.shop.internal', 'A');
    expect(concerned).toEqual([at[0]]);
    const d = desiredRecord(concerned, { name: 'db.shop.internal', type: 'A', values: ['10.0.0.3'], ttl: 5 });
    const fwd = changesToReach(concerned, [d]);
    expect(fwd.map((c) => c.Action)).toEqual(['DELETE', 'UPSERT']);
    const back = changesToReach([d], concerned);
    expect(back).toEqual([
      { Action: 'DELETE', ResourceRecordSet: d },
      { Action: 'UPSERT', ResourceRecordSet: concerned[0] },
    ]);
    expect(changesToReach(concerned, concerned)).toEqual([]);
  });

  it('creates a missing record and deletes it on undo', () => {
    const d = desiredRecord([], { name: 'new.shop.internal', type: 'CNAME', values: ['x.example.com'] });
    expect(d).toEqual({
      Name: 'new.shop.internal.',
      Type: 'CNAME',
      TTL: 60,
      ResourceRecords: [{ Value: 'x.example.com' }],
    });
    expect(changesToReach([d], [])).toEqual([{ Action: 'DELETE', ResourceRecordSet: d }]);
  });

  it('builds alias records without a TTL', () => {
    const d = desiredRecord([a(['1.2.3.4'])], {
      name: 'db.shop.internal',
      type: 'A',
      alias: { HostedZoneId: 'Z35', DNSName: 'lb.example.com', EvaluateTargetHealth: false },
    });
    expect(d.TTL).toBeUndefined();
    expect(d.ResourceRecords).toBeUndefined();
    expect(cachedTtl([d])).toBe(60);
  });
});
