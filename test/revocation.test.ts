// Service-token revocation without a query per request (src/auth/tokens.ts, src/db/notifications.ts): each gateway
// process keeps the tokens it has checked in memory while its LISTEN/NOTIFY listener is connected; a revocation made
// through one process (revokeServiceToken answers once every listening process acknowledged the notice) is refused by
// another on its very next request, and a process whose
// listener is down reads the token record on every request, so a dead listener never lets a revoked token through.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { createTree, issueServiceToken, type Tree } from './support/fixtures.js';
import { createTokenService, AuthenticationError, REVOCATION_CHANNEL } from '../src/auth/tokens.js';
import { LISTENER_APPLICATION_NAME, type Notifications } from '../src/db/notifications.js';

let a: Harness;
let b: Harness;
let tree: Tree;

beforeAll(async () => {
  a = await startHarness({ workers: false });
  // A second gateway process on the same database: its own pool, its own listener, its own caches.
  b = await startHarness({ workers: false, databaseUrl: a.database.url, env: { GATEWAY_MASTER_KEY: a.config.masterKey! } });
  tree = await createTree(a);
  await waitFor(async () => a.services.notifications!.live && b.services.notifications!.live);
});

afterAll(async () => {
  await b?.close();
  await a?.close();
});

async function viewer(h: Harness, token: string): Promise<{ status: number; statements: number; role?: string; code?: string }> {
  let statements = 0;
  h.services.database.onQuery = () => statements++;
  try {
    const res = await fetch(`${h.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: '{ viewer { role } }' }),
    });
    const body = (await res.json()) as { data?: { viewer: { role: string } }; errors?: { extensions: { code: string } }[] };
    return { status: res.status, statements, role: body.data?.viewer.role, code: body.errors?.[0]?.extensions.code };
  } finally {
    h.services.database.onQuery = undefined;
  }
}

const REVOKE = `mutation($id: ID!) { revokeServiceToken(input: { serviceTokenId: $id }) { __typename } }`;

describe('two gateway processes', () => {
  it('a token checked once is served from memory; revoked through one process, it is refused by the other', async () => {
    const app = await issueServiceToken(a, tree.projectId, 'two-process');
    expect(await viewer(b, app.token)).toMatchObject({ status: 200, role: 'SERVICE' });
    // Checked: the next request of this token costs process B no SQL at all.
    expect(await viewer(b, app.token)).toEqual({ status: 200, statements: 0, role: 'SERVICE', code: undefined });

    const revoked = await a.gql(REVOKE, { id: app.id });
    expect(revoked.data.revokeServiceToken.__typename).toBe('RevokeServiceTokenPayload');
    // The revocation answered once every listening process acknowledged its notice: B's very next request is refused.
    expect(await viewer(b, app.token)).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
    // And the revoking process itself refused it at once.
    expect(await viewer(a, app.token)).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
  });

  it('a revocation written straight into the database (no GraphQL) reaches both processes through the trigger', async () => {
    const app = await issueServiceToken(a, tree.projectId, 'direct-sql');
    expect(await viewer(a, app.token)).toMatchObject({ status: 200 });
    expect(await viewer(b, app.token)).toMatchObject({ status: 200 });
    expect(await viewer(b, app.token)).toMatchObject({ status: 200, statements: 0 });
    const id = decodeGlobalID(app.id).id;
    await a.services.db.execute(sql`update service_tokens set revoked_at = now() where id = ${id}`);
    await a.services.notifications!.sync();
    await b.services.notifications!.sync();
    expect(await viewer(a, app.token)).toMatchObject({ status: 401 });
    expect(await viewer(b, app.token)).toMatchObject({ status: 401 });
  });

  it("with its listener's connection killed, a process reads the token record again until the listener is back", async () => {
    const app = await issueServiceToken(a, tree.projectId, 'listener-lost');
    expect(await viewer(b, app.token)).toMatchObject({ status: 200 });
    expect(await viewer(b, app.token)).toMatchObject({ status: 200, statements: 0 });
    const epoch = b.services.notifications!.epoch;
    // Kill every listener connection (both processes'): notices sent meanwhile are lost to them.
    await a.services.db.execute(sql`select pg_terminate_backend(pid) from pg_stat_activity where application_name = ${LISTENER_APPLICATION_NAME} and datname = current_database()`);
    await waitFor(async () => b.services.notifications!.epoch !== epoch);
    // Whether or not it has reconnected yet, B no longer trusts what it cached under the old connection.
    const again = await viewer(b, app.token);
    expect(again).toMatchObject({ status: 200 });
    expect(again.statements).toBeGreaterThan(0);
    await waitFor(async () => b.services.notifications!.live && a.services.notifications!.live);
    // Back: one read under the new connection, then memory again.
    expect(await viewer(b, app.token)).toMatchObject({ status: 200 });
    expect(await viewer(b, app.token)).toMatchObject({ status: 200, statements: 0 });
  });
});

/** A listener under the test's control: up or down, epochs and notices delivered by hand. */
function fakeListener(): Notifications & { set(live: boolean): void; deliver(payload: string): void } {
  let live = true;
  let epoch = 1;
  const handlers: ((payload: string, senderPid: number) => void)[] = [];
  return {
    get live() {
      return live;
    },
    get epoch() {
      return epoch;
    },
    on(channel, handler) {
      if (channel === REVOCATION_CHANNEL) handlers.push(handler);
    },
    send: () => {},
    sync: async () => {},
    close: async () => {},
    set(next) {
      live = next;
      epoch++;
    },
    deliver(payload) {
      for (const h of handlers) h(payload, 0);
    },
  };
}

describe('the cache rules (one process, a listener under control)', () => {
  it('never accepts a revoked token while the listener is down, and re-reads after it reconnects', async () => {
    const feed = fakeListener();
    const tokens = await createTokenService(a.services.db, a.services.box, { issuer: a.config.jwt.issuer, audience: a.config.jwt.audience, revocations: feed });
    try {
      const app = await issueServiceToken(a, tree.projectId, 'fake-feed');
      const id = decodeGlobalID(app.id).id;
      let statements = 0;
      a.services.database.onQuery = () => statements++;
      await tokens.authenticate(a.services.db, app.token);
      const first = statements;
      expect(first).toBeGreaterThan(0);
      await tokens.authenticate(a.services.db, app.token);
      expect(statements).toBe(first);

      // Revoked while the listener is down (its notice is lost): the next request reads the record and is refused.
      feed.set(false);
      await a.services.db.execute(sql`update service_tokens set revoked_at = now() where id = ${id}`);
      await expect(tokens.authenticate(a.services.db, app.token)).rejects.toThrow(AuthenticationError);
      feed.set(true);
      await expect(tokens.authenticate(a.services.db, app.token)).rejects.toThrow('token revoked');
      a.services.database.onQuery = undefined;
    } finally {
      a.services.database.onQuery = undefined;
      tokens.close();
    }
  });

  it('a notice drops the cached token; a listener that reconnected (new epoch) makes every cached token be read again', async () => {
    const feed = fakeListener();
    const tokens = await createTokenService(a.services.db, a.services.box, { issuer: a.config.jwt.issuer, audience: a.config.jwt.audience, revocations: feed });
    try {
      const app = await issueServiceToken(a, tree.projectId, 'fake-notice');
      const id = decodeGlobalID(app.id).id;
      await tokens.authenticate(a.services.db, app.token);
      // Revoked in the database without a notice reaching this process: the cache still answers (the notice is the signal)...
      await a.services.db.execute(sql`update service_tokens set revoked_at = now() where id = ${id}`);
      await expect(tokens.authenticate(a.services.db, app.token)).resolves.toMatchObject({ role: 'SERVICE' });
      // ...until the notice arrives,
      feed.deliver(id);
      await expect(tokens.authenticate(a.services.db, app.token)).rejects.toThrow('token revoked');

      const other = await issueServiceToken(a, tree.projectId, 'fake-epoch');
      const otherId = decodeGlobalID(other.id).id;
      await tokens.authenticate(a.services.db, other.token);
      await a.services.db.execute(sql`update service_tokens set revoked_at = now() where id = ${otherId}`);
      // ...or the listener reconnects (a notice may have been missed while it was away).
      feed.set(false);
      feed.set(true);
      await expect(tokens.authenticate(a.services.db, other.token)).rejects.toThrow('token revoked');
    } finally {
      tokens.close();
    }
  });

  it('the periodic re-check drops a token revoked without any notice', async () => {
    const feed = fakeListener();
    const tokens = await createTokenService(a.services.db, a.services.box, {
      issuer: a.config.jwt.issuer,
      audience: a.config.jwt.audience,
      revocations: feed,
      recheckMs: 100,
    });
    try {
      const app = await issueServiceToken(a, tree.projectId, 'fake-recheck');
      const id = decodeGlobalID(app.id).id;
      await tokens.authenticate(a.services.db, app.token);
      await a.services.db.execute(sql`update service_tokens set revoked_at = now() where id = ${id}`);
      await waitFor(async () => tokens.authenticate(a.services.db, app.token).then(() => false, (e: unknown) => e instanceof AuthenticationError));
    } finally {
      tokens.close();
    }
  });
});
