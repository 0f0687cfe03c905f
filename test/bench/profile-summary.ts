// Summarises a V8 .cpuprofile (node --cpu-prof, e.g. the benchmark's gateway with BENCH_GATEWAY_NODE_OPTIONS): the
// functions with the most self time, the most inclusive time (each function counted once per sample, however deep
// it recurses), and self time per package (node_modules/<name>, node: internals, the app's own files).
//
//   npx tsx test/bench/profile-summary.ts <file.cpuprofile> [--top 30] [--filter <substring of a function's url>]
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
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '30' }, filter: { type: 'string' } } });
if (positionals.length !== 1) {
  console.error('usage: profile-summary <file.cpuprofile> [--top N] [--filter <url substring>]');
  process.exit(2);
}
const top = Number(values.top);
const profile = JSON.parse(readFileSync(positionals[0]!, 'utf8')) as Profile;

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const IDLE = new Set(['(idle)', '(program)', '(garbage collector)']);
const shortUrl = (url: string) => url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, 'nm:').replace(/^.*\/dist\//, 'dist/');
const keyOf = (f: CallFrame) => `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}:${f.lineNumber + 1}`;
function packageOf(f: CallFrame): string {
  if (IDLE.has(f.functionName) || f.functionName === '(root)') return f.functionName;
  const nm = /\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(f.url);
  if (nm) return nm[1]!;
  if (f.url.startsWith('node:') || f.url === '') return f.url === '' ? '(native/builtin)' : 'node:' + f.url.slice(5).split('/')[0];
  if (/\/dist\//.test(f.url)) return 'app: ' + f.url.replace(/^.*\/dist\//, '').split('/')[0];
  return f.url;
}

// Time per sample: its delta (microseconds).
const self = new Map<string, number>();
const inclusive = new Map<string, number>();
const perPackage = new Map<string, number>();
let total = 0;
let idle = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const dt = profile.timeDeltas[i + 1] ?? 0;
  const node = byId.get(profile.samples[i]!)!;
  total += dt;
  if (node.callFrame.functionName === '(idle)') {
    idle += dt;
    continue;
  }
  const k = keyOf(node.callFrame);
  self.set(k, (self.get(k) ?? 0) + dt);
  perPackage.set(packageOf(node.callFrame), (perPackage.get(packageOf(node.callFrame)) ?? 0) + dt);
  const seen = new Set<string>();
  for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
    const key = keyOf(byId.get(id)!.callFrame);
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + dt);
  }
}
const busy = total - idle;
const pct = (x: number) => `${((100 * x) / busy).toFixed(1).padStart(5)} %`;
const ms = (x: number) => `${(x / 1000).toFixed(0).padStart(7)} ms`;
const show = (title: string, m: Map<string, number>) => {
  console.log(`\n${title}`);
  const rows = [...m].filter(([k]) => !values.filter || k.includes(values.filter)).sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [k, v] of rows) console.log(`${ms(v)} ${pct(v)}  ${k}`);
};
console.log(`profile: ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s, busy ${(busy / 1e6).toFixed(2)} s (${((100 * busy) / total).toFixed(0)} %), ${profile.samples.length} samples; percentages are of busy time`);
show('self time by package', perPackage);
show('self time', self);
show('inclusive time', inclusive);
