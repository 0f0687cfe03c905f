// npm run measure:start — how fast the compiled gateway is ready, and its memory then. Starts `node dist/main.js`
// with the flags of `npm start` on a new, empty PostgreSQL database (migrated at start-up), polls /readyz, and reads the
// process's resident memory from /proc. Three runs; prints each and the median. Not a test: figures depend on the
// machine, so they are measured and reported, never asserted by a timed unit test.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createTestDatabase } from '../support/db.js';
import { generateMasterKey } from '../../src/secrets/secret-box.js';
import buildOnce, { dist, startEnv, startFlags } from '../support/build.js';

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

async function once(): Promise<{ readyMs: number; rssMb: number }> {
  const db = await createTestDatabase();
  const started = performance.now();
  const child = spawn(process.execPath, [...startFlags(), dist('main.js')], {
    env: { ...process.env, ...startEnv(), DATABASE_URL: db.url, GATEWAY_MASTER_KEY: generateMasterKey(), PORT: '0', HOST: '127.0.0.1', GATEWAY_PRINT_PORT: '1', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /GATEWAY_PORT=(\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`gateway exited with ${code}`)));
    });
    for (;;) {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null);
      if (res?.status === 200) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    return { readyMs: performance.now() - started, rssMb: rssMb(child.pid!) };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    await db.drop();
  }
}

buildOnce();
const runs = [];
for (let i = 0; i < 3; i++) runs.push(await once());
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const r of runs) console.log(`ready in ${r.readyMs.toFixed(0)} ms, RSS ${r.rssMb.toFixed(1)} MB`);
console.log(`median: ready in ${median(runs.map((r) => r.readyMs)).toFixed(0)} ms, RSS ${median(runs.map((r) => r.rssMb)).toFixed(1)} MB (node ${process.version})`);
