// Operations: replicas migrating together, health and readiness, graceful shutdown, the container's command.
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { execFileSync } from 'node:child_process';
import { dist, nodeScript, ROOT, startEnv, startFlags } from './support/build.js';
import { createTestDatabase, type TestDatabase } from './support/db.js';
import { spawnGateway, type GatewayProcess } from './support/processes.js';
import { startSimulator, type Simulator } from '../src/heygen/simulator/server.js';
import { generateMasterKey } from '../src/secrets/secret-box.js';
import { loadConfig } from '../src/config.js';

let database: TestDatabase;
let sim: Simulator;
const gateways: GatewayProcess[] = [];
let gatewayEnv: Record<string, string>;

beforeAll(async () => {
  database = await createTestDatabase();
  sim = await startSimulator();
});
afterAll(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  await sim?.close();
  await database?.drop();
});

it('two replicas starting together on an empty database migrate once and both become ready', async () => {
  const env = { DATABASE_URL: database.url, GATEWAY_MASTER_KEY: generateMasterKey(), HEYGEN_BASE_URL: sim.url, WORKERS_ENABLED: 'false' };
  gatewayEnv = env;
  gateways.push(...(await Promise.all([spawnGateway(env), spawnGateway(env)])));
  for (const g of gateways) {
    expect((await fetch(`${g.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${g.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { database: true, migrations: true } });
  }
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  const { rows } = await client.query('select count(*)::int as n, count(distinct hash)::int as d from drizzle.__drizzle_migrations');
  const keys = await client.query('select count(*)::int as n from signing_keys');
  await client.end();
  expect(rows[0].n).toBe(rows[0].d); // each migration recorded once
  expect(keys.rows[0].n).toBe(1); // one signing key shared by both replicas
});

it('SIGTERM lets an in-flight request finish, ends open subscriptions (complete), then the process exits cleanly', async () => {
  const g = gateways[0]!;
  // An open subscription (an SSE stream that would never end by itself) ends cleanly: `complete`, then the end.
  const token = execFileSync(process.execPath, [dist('cli/token.js'), '--admin'], { env: { ...process.env, ...gatewayEnv, LOG_LEVEL: 'error' } }).toString().trim().split('\n').at(-1)!;
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const created = await fetch(`${g.url}/graphql`, {
    method: 'POST',
    headers: auth,
    body: JSON.stringify({ query: `mutation { createOrgUnit(input: { kind: ORGANIZATION, name: "Acme" }) { ... on CreateOrgUnitPayload { orgUnit { id } } } }` }),
  });
  const unitId = ((await created.json()) as any).data.createOrgUnit.orgUnit.id;
  const stream = await fetch(`${g.url}/graphql`, {
    method: 'POST',
    headers: { ...auth, accept: 'text/event-stream' },
    body: JSON.stringify({ query: `subscription($u: ID!) { budgetUpdated(orgUnitId: $u) { id } }`, variables: { u: unitId } }),
  });
  expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const streamText = stream.text();
  // A request whose body arrives slowly is still in flight when the signal lands.
  const body = JSON.stringify({ query: '{ __typename }' });
  const inFlight = fetch(`${g.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: new ReadableStream({
      async start(controller) {
        controller.enqueue(new TextEncoder().encode(body.slice(0, 5)));
        await new Promise((r) => setTimeout(r, 700));
        controller.enqueue(new TextEncoder().encode(body.slice(5)));
        controller.close();
      },
    }),
    duplex: 'half',
  } as RequestInit);
  await new Promise((r) => setTimeout(r, 200));
  const exited = new Promise<number | null>((resolve) => g.child.once('exit', (code) => resolve(code)));
  g.child.kill('SIGTERM');
  const res = await inFlight;
  expect(res.status).toBe(401); // answered (no token), not cut off
  const events = [...(await streamText).matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
  expect(events).toEqual(['next', 'complete']);
  expect(await exited).toBe(0);
  // A new connection is refused once the server has closed.
  await expect(fetch(`${g.url}/healthz`)).rejects.toThrow();
});

it("the Dockerfile runs the gateway with npm start's flags and environment", () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const cmd = /^CMD (\[.*\])$/m.exec(dockerfile);
  expect(JSON.parse(cmd![1]!)).toEqual(['node', ...startFlags(), 'dist/main.js']);
  // Each variable `npm start` sets before `node` (e.g. MALLOC_ARENA_MAX) is set by an ENV line of the runtime stage.
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const env = Object.fromEntries([...runtime.matchAll(/^ENV (.+)$/gm)].flatMap((m) => m[1]!.split(/\s+/).map((w) => w.split('=') as [string, string])));
  for (const [name, value] of Object.entries(startEnv())) expect(env[name], name).toBe(value);
  expect(Object.keys(startEnv()).length).toBeGreaterThan(0);
});

it('npm start sets the NODE_ENV the gateway assumes when it is unset, so that graphql-js takes its production path', () => {
  // graphql-js reads NODE_ENV once, at import: unset, it checks every instanceof a second way (a copy of graphql from
  // another module), while the gateway's own configuration treats unset as production.
  expect(loadConfig({}).production).toBe(true);
  expect(startEnv().NODE_ENV).toBe('production');
});

it('npm run demo runs Node with the environment and flags of npm start', () => {
  expect(nodeScript('demo', 'dist/demo/main.js')).toEqual(nodeScript('start', 'dist/main.js'));
});

it('a running gateway looks at the memory malloc keeps freed every MEMORY_TRIM_INTERVAL_MS (its metrics)', async () => {
  const g = await spawnGateway({ ...gatewayEnv, MEMORY_TRIM_INTERVAL_MS: '50' });
  gateways.push(g);
  const scrape = async () => {
    const text = await (await fetch(`${g.url}/metrics`)).text();
    return {
      trims: Object.fromEntries([...text.matchAll(/^gateway_memory_trims_total\{released="(true|false)"\} (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])])),
      free: Number(/^gateway_malloc_free_bytes (\d+)$/m.exec(text)?.[1]),
    };
  };
  expect(Object.keys((await scrape()).trims).sort()).toEqual(['false', 'true']);
  // What it does with what it finds is test/memory-trim.test.ts's: here, that the process looks at all.
  await vi.waitFor(async () => expect((await scrape()).free).toBeGreaterThan(0), { timeout: 10_000, interval: 50 });
  const off = await spawnGateway({ ...gatewayEnv, MEMORY_TRIM_INTERVAL_MS: '0' });
  gateways.push(off);
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(/^gateway_malloc_free_bytes (\d+)$/m.exec(await (await fetch(`${off.url}/metrics`)).text())?.[1]).toBe('0');
});
