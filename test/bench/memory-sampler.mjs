// A memory sampler to load into the measured gateway: where its RSS is, every 250 ms, as JSON lines.
//   BENCH_GATEWAY_NODE_OPTIONS="--import ./test/bench/memory-sampler.mjs" MEMORY_SAMPLES=/tmp/mem.jsonl npm run bench -- --quick --only submit
// Each line: t (ms since start), rss/anon/file (MB, /proc/self/status: file = pages of the node binary and libraries),
// heapTotal/heapUsed/external/arrayBuffers (process.memoryUsage()), malloced/peakMalloced (V8's own malloc: compiler
// and parser zones), spaces ({ name: [size, used] } of v8.getHeapSpaceStatistics()). Every 5 s, <file>.smaps.json
// holds the resident MB per mapping of /proc/self/smaps (anonymous mappings grouped by permissions and size), so the
// last one written shows where the memory is after the load. Plain JavaScript: Node loads it without a compiler.
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import v8 from 'node:v8';

const out = process.env.MEMORY_SAMPLES ?? `/tmp/memory-${process.pid}.jsonl`;
const t0 = Date.now();
const mb = (bytes) => Math.round(bytes / 104857.6) / 10;
writeFileSync(out, '');

function sample() {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  const usage = process.memoryUsage();
  const heap = v8.getHeapStatistics();
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name.replace(/_space$/, ''), [mb(s.space_size), mb(s.space_used_size)]]));
  const line = {
    t: Date.now() - t0,
    rss: mb(kb('VmRSS') * 1024), anon: mb(kb('RssAnon') * 1024), file: mb(kb('RssFile') * 1024),
    heapTotal: mb(usage.heapTotal), heapUsed: mb(usage.heapUsed), external: mb(usage.external), arrayBuffers: mb(usage.arrayBuffers),
    malloced: mb(heap.malloced_memory), peakMalloced: mb(heap.peak_malloced_memory),
    spaces,
  };
  appendFileSync(out, `${JSON.stringify(line)}\n`);
}

function smaps() {
  const groups = new Map();
  let current = null;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      const kb = (parseInt(head[2], 16) - parseInt(head[1], 16)) / 1024;
      current = head[4] || `anonymous ${head[3]}${kb >= 65536 ? ' (64 MB or more)' : kb >= 1024 ? ' (1 MB or more)' : ''}`;
      if (!groups.has(current)) groups.set(current, 0);
      continue;
    }
    const rss = /^Rss:\s+(\d+)/.exec(line);
    if (rss && current) groups.set(current, groups.get(current) + Number(rss[1]));
  }
  const mappings = [...groups].map(([name, kb]) => [name, mb(kb * 1024)]).filter(([, size]) => size >= 0.5).sort((a, b) => b[1] - a[1]);
  writeFileSync(out.replace(/\.jsonl$/, '') + '.smaps.json', JSON.stringify({ t: Date.now() - t0, mappings }));
}

sample();
setInterval(sample, 250).unref();
setInterval(smaps, 5000).unref();
