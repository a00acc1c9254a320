import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** cgroup v2: `<quota> <period>` in microseconds, or `max <period>` when unlimited. */
const CPU_MAX_PATH = '/sys/fs/cgroup/cpu.max';

/**
 * Whole CPUs a cgroup v2 `cpu.max` grants (rounded down, at least 1), or undefined when it sets no
 * quota or cannot be read as one. `150000 100000` is 1.5 CPUs: 1, since a second worker would
 * only be throttled.
 */
export function cpusFromCpuMax(text: string): number | undefined {
  const [quota, period, extra] = text.trim().split(/\s+/);
  if (quota === undefined || period === undefined || extra !== undefined || quota === 'max') return undefined;
  if (!/^\d+$/.test(quota) || !/^\d+$/.test(period)) return undefined;
  const periodUs = Number(period);
  if (periodUs === 0) return undefined;
  return Math.max(1, Math.floor(Number(quota) / periodUs));
}

export interface CpuSources {
  /** The text of cgroup v2's cpu.max, or undefined outside a cgroup v2 container. */
  readonly cpuMax: () => string | undefined;
  /** CPUs the process may run on (affinity); Node 20's answer ignores the cgroup quota. */
  readonly parallelism: () => number;
}

const systemSources: CpuSources = {
  cpuMax: () => {
    try {
      return readFileSync(CPU_MAX_PATH, 'utf8');
    } catch {
      return undefined;
    }
  },
  parallelism: availableParallelism,
};

/** The CPUs this container may use: `WORKERS=auto`. */
export function availableCpus(sources: CpuSources = systemSources): number {
  const parallelism = Math.max(1, sources.parallelism());
  const text = sources.cpuMax();
  const quota = text === undefined ? undefined : cpusFromCpuMax(text);
  return quota === undefined ? parallelism : Math.min(quota, parallelism);
}
