import { describe, expect, it } from 'vitest';
import { FaultInjector, parseFault } from '../../../src/engine/fault.js';

describe('CUTOVER_TEST_FAULT', () => {
  it('parses step:phase:n:action, and nothing else', () => {
    expect(parseFault('flip-dns:verify:2:kill')).toEqual({
      stepId: 'flip-dns',
      phase: 'verify',
      n: 2,
      action: 'kill',
    });
    expect(parseFault('a:b:apply:1:fail')).toMatchObject({ stepId: 'a:b', phase: 'apply' });
    for (const bad of [undefined, '', 'flip-dns', 'flip-dns:apply:x:fail', 'flip-dns:apply:1:explode'])
      expect(parseFault(bad)).toBeUndefined();
  });

  it("fails at the n-th write of the step's apply, counting only that step and phase", () => {
    const f = new FaultInjector(parseFault('fence:apply:2:fail')!);
    f.onStep('drain', 'running');
    f.onCall('write');
    f.onCall('write'); // another step: not counted
    f.onStep('fence', 'running');
    f.onCall('read'); // reads do not count in apply
    f.onCall('write');
    expect(() => f.onCall('write')).toThrow(/injected fault: apply call 2 of "fence"/);
  });

  it('counts reads in verify, and a retry of apply does not reset the count', () => {
    const v = new FaultInjector(parseFault('s:verify:1:fail')!);
    v.onStep('s', 'running');
    v.onCall('read');
    v.onStep('s', 'verifying');
    expect(() => v.onCall('read')).toThrow(/verify call 1/);

    const a = new FaultInjector(parseFault('s:apply:2:fail')!);
    a.onStep('s', 'running');
    a.onCall('write');
    a.onStep('s', 'running'); // retry
    expect(() => a.onCall('write')).toThrow(/apply call 2/);
  });
});
