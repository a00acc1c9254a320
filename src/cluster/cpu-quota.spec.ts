import { availableCpus, cpusFromCpuMax } from './cpu-quota.js';

describe('cpusFromCpuMax', () => {
  it('reads no quota from "max 100000"', () => {
    expect(cpusFromCpuMax('max 100000\n')).toBeUndefined();
  });

  it('reads whole CPUs from a quota of whole periods', () => {
    expect(cpusFromCpuMax('200000 100000\n')).toBe(2);
    expect(cpusFromCpuMax('400000 100000')).toBe(4);
  });

  it('rounds a fractional quota down, to at least one CPU', () => {
    expect(cpusFromCpuMax('150000 100000')).toBe(1);
    expect(cpusFromCpuMax('250000 100000')).toBe(2);
    expect(cpusFromCpuMax('50000 100000')).toBe(1);
  });

  it('treats anything else as no quota rather than guessing', () => {
    for (const text of ['', '\n', 'max', '200000', '200000 0', '-1 100000', 'abc 100000', '200000 100000 7', '2e5 100000']) {
      expect(cpusFromCpuMax(text)).toBeUndefined();
    }
  });
});

describe('availableCpus', () => {
  it('takes the cgroup quota when it is below the CPUs the process may run on', () => {
    expect(availableCpus({ cpuMax: () => '200000 100000\n', parallelism: () => 8 })).toBe(2);
  });

  it('takes the CPUs the process may run on when the quota grants more', () => {
    expect(availableCpus({ cpuMax: () => '800000 100000\n', parallelism: () => 2 })).toBe(2);
  });

  it('takes the CPUs the process may run on without a quota or without cgroup v2', () => {
    expect(availableCpus({ cpuMax: () => 'max 100000\n', parallelism: () => 6 })).toBe(6);
    expect(availableCpus({ cpuMax: () => undefined, parallelism: () => 3 })).toBe(3);
  });
});
