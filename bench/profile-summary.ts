/**
 * Where a gateway's CPU time goes, from a V8 .cpuprofile (`node --cpu-prof`, or `npm run bench --
 * --profile`): self time by function, self time by package or source file, and inclusive time of the
 * gateway's own functions and a few library entry points.
 *
 *   node --import tsx bench/profile-summary.ts FILE.cpuprofile [--last S] [--top N] [--requests N]
 *
 * --last S counts only the final S seconds of samples (the load, without start-up and sign-in).
 * --requests N (requests served in that window) adds µs per request. The profiler samples wall time,
 * so on a busy machine the absolute figures are inflated; the shares are what to compare.
 *
 * "Charged to the nearest package" counts node's internals and V8 builtins to the closest JavaScript
 * caller outside node (Buffer.from in secure-session is secure-session's cost); work with no such
 * caller (socket reads, timers, GC) is its own line.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function isCpuProfile(value: unknown): value is CpuProfile {
  if (typeof value !== 'object' || value === null) return false;
  return 'nodes' in value && Array.isArray(value.nodes) && 'samples' in value && Array.isArray(value.samples) && 'timeDeltas' in value && Array.isArray(value.timeDeltas);
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { last: { type: 'string' }, top: { type: 'string', default: '30' }, requests: { type: 'string' } },
});
const file = positionals[0];
if (file === undefined) throw new Error('usage: profile-summary.ts FILE.cpuprofile [--last S] [--top N]');
const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
if (!isCpuProfile(parsed)) throw new Error(`${file} is not a V8 CPU profile`);
const profile = parsed;
const top = Number(values.top);

const byId = new Map<number, ProfileNode>();
const parentOf = new Map<number, number>();
for (const node of profile.nodes) {
  byId.set(node.id, node);
  for (const child of node.children ?? []) parentOf.set(child, node.id);
}

/** Shortens a URL to what identifies it: `pkg/file` under node_modules, `src/...` or `node:...`. */
function where(url: string): string {
  if (url === '') return '';
  const modules = url.lastIndexOf('/node_modules/');
  if (modules !== -1) return url.slice(modules + '/node_modules/'.length);
  const dist = url.indexOf('/dist/');
  if (dist !== -1) return url.slice(dist + 1);
  return url.replace(/^file:\/\//, '');
}

/** The package (node_modules), the gateway's source file (dist/...), or node's internals. */
function owner(frame: CallFrame): string {
  const url = frame.url;
  if (url === '') return frame.functionName.startsWith('(') ? frame.functionName : '(native/V8 builtins)';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0] ?? ''}`;
  const modules = url.lastIndexOf('/node_modules/');
  if (modules !== -1) {
    const rest = url.slice(modules + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') === true ? `${rest[0]}/${rest[1] ?? ''}` : (rest[0] ?? url);
  }
  return where(url);
}

function key(frame: CallFrame): string {
  return `${frame.functionName || '(anonymous)'} ${where(frame.url)}:${frame.lineNumber + 1}`;
}

// sample timestamps: start plus the running sum of deltas; each sample is charged the delta that follows it
const times: number[] = [];
let clock = 0;
for (const delta of profile.timeDeltas) times.push((clock += delta));
const end = times[times.length - 1] ?? 0;
const from = values.last === undefined ? -Infinity : end - Number(values.last) * 1e6;

/** node:*, V8 builtins and natives: charged to their caller in the "nearest package" view. */
function isNodeOrNative(frame: CallFrame): boolean {
  return frame.url === '' || frame.url.startsWith('node:');
}

const self = new Map<string, number>();
const charged = new Map<string, number>();
const selfByOwner = new Map<string, number>();
const inclusive = new Map<string, number>();
let total = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const time = times[i] ?? 0;
  if (time < from) continue;
  const weight = (times[i + 1] ?? time) - time;
  const node = byId.get(profile.samples[i] ?? -1);
  if (node === undefined || weight <= 0) continue;
  total += weight;
  self.set(key(node.callFrame), (self.get(key(node.callFrame)) ?? 0) + weight);
  selfByOwner.set(owner(node.callFrame), (selfByOwner.get(owner(node.callFrame)) ?? 0) + weight);
  // each function once per stack, however often it recurses
  const seen = new Set<string>();
  let payer: string | undefined;
  for (let id: number | undefined = node.id; id !== undefined; id = parentOf.get(id)) {
    const frame = byId.get(id)?.callFrame;
    if (frame === undefined) continue;
    seen.add(key(frame));
    if (payer === undefined && !isNodeOrNative(frame)) payer = owner(frame);
  }
  const leaf = node.callFrame.functionName;
  const account = leaf.startsWith('(') ? leaf : (payer ?? '(node core, no JavaScript caller)');
  charged.set(account, (charged.get(account) ?? 0) + weight);
  for (const k of seen) inclusive.set(k, (inclusive.get(k) ?? 0) + weight);
}

const idle = [...self.entries()].filter(([k]) => k.startsWith('(idle)')).reduce((sum, [, v]) => sum + v, 0);
const busy = total - idle;
const pct = (value: number): string => `${((value / busy) * 100).toFixed(1).padStart(5)}%`;
const requests = values.requests === undefined ? undefined : Number(values.requests);
const ms = (value: number): string =>
  `${(value / 1000).toFixed(0).padStart(7)} ms${requests === undefined ? '' : ` ${(value / requests).toFixed(1).padStart(6)} µs/req`}`;

function print(title: string, entries: Iterable<[string, number]>, filter: (k: string) => boolean = () => true): void {
  process.stdout.write(`\n${title}\n`);
  const sorted = [...entries].filter(([k]) => filter(k) && !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [k, v] of sorted) process.stdout.write(`${ms(v)} ${pct(v)}  ${k}\n`);
}

process.stdout.write(`${file}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (percentages are of busy time)\n`);
print('self time by function', self.entries());
print('self time by package / source file', selfByOwner.entries());
print('self time charged to the nearest package (node internals to their caller)', charged.entries());
print('inclusive time, gateway code (dist/)', inclusive.entries(), (k) => k.includes(' dist/'));
print('inclusive time, libraries', inclusive.entries(), (k) => !k.includes(' dist/') && !k.startsWith('(') && !k.includes(' node:'));
