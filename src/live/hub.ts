// Live updates: what a GraphQL subscription waits on. Changes are announced by PostgreSQL in the transaction that
// makes them (triggers calling `gateway_live_publish`, migration 0013) on the channel `gateway_live`, while some
// gateway process has a stream open (src/live/presence.ts: this hub registers its process with its first stream and
// unregisters it with its last); each gateway process hears them on its one listener connection
// (src/db/notifications.ts) and hands them to its own subscribers here. A signal names ids only: a subscriber re-reads the entity, under its caller's visibility,
// before it sends anything.
//
// Topics: `<kind>:<id>` (one entity: `job:<job id>`, `budget:<unit id>`) and `<kind>@<unit id>` (every entity of
// that kind a signal lists the unit for: `job@<project id>`). A new kind (e.g. `money`, the money events of an
// outbox row) needs no change here: one `select gateway_live_publish('money', <event id>, <units>)` in the
// transaction that writes it, and a subscription field on `money@<unit id>`. Money events have their own channel
// (`gateway_money_event`, the event's id): each process turns them into `money` signals for the units of the
// event's unit's path (src/notifications/events.ts, moneyEventSignal).
import { sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { uuidArray } from '../ledger/ledger.js';
import type { LivePresence } from './presence.js';

export const LIVE_CHANNEL = 'gateway_live';

export interface LiveSignal {
  kind: string;
  id: string;
  units: string[];
}

const KIND = /^[a-z][a-z_]{0,30}$/;
const ID = /^[0-9A-Za-z_-]{1,64}$/;

/** A payload from the channel, or null when it is not one (ignored). */
export function parseLiveSignal(payload: string): LiveSignal | null {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return null;
  }
  if (!value || typeof value !== 'object') return null;
  const { k, id, u } = value as { k?: unknown; id?: unknown; u?: unknown };
  if (typeof k !== 'string' || !KIND.test(k) || typeof id !== 'string' || !ID.test(id)) return null;
  const units = Array.isArray(u) ? u.filter((x): x is string => typeof x === 'string' && ID.test(x)) : [];
  return { kind: k, id, units };
}

/** Announces a change from inside the writing transaction (delivered on commit, to every process). */
export async function publishLive(tx: Db, kind: string, id: string, units: readonly string[]): Promise<void> {
  if (!KIND.test(kind)) throw new RangeError(`invalid live kind ${kind}`);
  await tx.execute(sql`select gateway_live_publish(${kind}, ${id}, ${uuidArray(units)})`);
}

export const entityTopic = (kind: string, id: string) => `${kind}:${id}`;
export const unitTopic = (kind: string, unitId: string) => `${kind}@${unitId}`;

export class TooManySubscriptionsError extends Error {}

/** One subscriber's stream: the ids of entities that changed since it last took from it (coalesced, bounded). */
export interface LiveStream extends AsyncIterableIterator<string> {
  return(): Promise<IteratorResult<string>>;
}

export interface LiveHub {
  /**
   * A stream of ids announced on `topic`, counted against `owner`'s limit (throws TooManySubscriptionsError past it).
   * `initial` ids are yielded first (the entity as it stands when the subscription starts). `tokenId`: the token
   * the caller subscribed with, whose revocation ends the stream.
   */
  subscribe(topic: string, owner: string, initial?: readonly string[], tokenId?: string | null): LiveStream;
  /** Ends (cleanly) every stream opened with this token: it was revoked. */
  revoke(tokenId: string): void;
  /** Hands one signal to this process's subscribers. */
  dispatch(signal: LiveSignal): void;
  /**
   * Notifications may have been missed (the listener reconnected): every subscriber of an entity topic gets its
   * entity again, re-read now.
   */
  resync(): void;
  /**
   * Resolves once changes committed from now on reach this process's streams: at once, unless its first stream has
   * just opened and the process is registering as a listener (src/live/presence.ts); rejects when it could not
   * register (the database's error). A caller that must not miss a change it is about to cause waits for it after
   * subscribing.
   */
  ready(): Promise<void>;
  /** Whether any stream of this process listens on a topic of `kind` (a signal that costs a read can be skipped). */
  wants(kind: string): boolean;
  /** Open streams, per owner and in all. */
  count(owner?: string): number;
  /** Ends every stream (they complete cleanly) and refuses new ones: the process is shutting down. */
  close(): void;
}

interface Subscriber {
  topic: string;
  owner: string;
  tokenId: string | null;
  pending: Set<string>;
  wake: (() => void) | null;
  done: boolean;
}

/** Distinct ids a slow subscriber may have waiting; past it the oldest is dropped (it was re-read later anyway). */
const MAX_PENDING = 1_000;

/**
 * `presence`: told when the process's first stream opens (`activate`) and when its last one ends (`deactivate`), and
 * asked whether streams are `ready`; without it (a hub of its own, in tests), streams are ready at once.
 */
export function createLiveHub(opts: { maxPerOwner: number; presence?: Pick<LivePresence, 'activate' | 'deactivate' | 'ready'> }): LiveHub {
  const byTopic = new Map<string, Set<Subscriber>>();
  const perOwner = new Map<string, number>();
  let closed = false;
  let open = 0;

  const finish = (s: Subscriber) => {
    if (s.done) return;
    s.done = true;
    const set = byTopic.get(s.topic);
    set?.delete(s);
    if (set?.size === 0) byTopic.delete(s.topic);
    const n = (perOwner.get(s.owner) ?? 1) - 1;
    if (n > 0) perOwner.set(s.owner, n);
    else perOwner.delete(s.owner);
    open -= 1;
    if (open === 0) opts.presence?.deactivate();
    s.wake?.();
  };

  const push = (s: Subscriber, id: string) => {
    if (s.done) return;
    s.pending.delete(id);
    s.pending.add(id);
    if (s.pending.size > MAX_PENDING) s.pending.delete(s.pending.values().next().value!);
    s.wake?.();
  };

  const publish = (topic: string, id: string) => {
    for (const s of byTopic.get(topic) ?? []) push(s, id);
  };

  return {
    subscribe(topic, owner, initial = [], tokenId = null) {
      if (closed) throw new TooManySubscriptionsError('the server is shutting down');
      const mine = perOwner.get(owner) ?? 0;
      if (mine >= opts.maxPerOwner) throw new TooManySubscriptionsError(`at most ${opts.maxPerOwner} open subscriptions per caller`);
      perOwner.set(owner, mine + 1);
      open += 1;
      if (open === 1) opts.presence?.activate();
      const s: Subscriber = { topic, owner, tokenId, pending: new Set(initial), wake: null, done: false };
      let set = byTopic.get(topic);
      if (!set) byTopic.set(topic, (set = new Set()));
      set.add(s);
      const stream: LiveStream = {
        async next() {
          for (;;) {
            if (s.pending.size > 0) {
              const id = s.pending.values().next().value!;
              s.pending.delete(id);
              return { done: false, value: id };
            }
            if (s.done) return { done: true, value: undefined };
            await new Promise<void>((resolve) => (s.wake = resolve));
            s.wake = null;
          }
        },
        async return() {
          s.pending.clear();
          finish(s);
          return { done: true, value: undefined };
        },
        [Symbol.asyncIterator]() {
          return stream;
        },
      };
      return stream;
    },
    dispatch(signal) {
      publish(entityTopic(signal.kind, signal.id), signal.id);
      for (const unit of signal.units) publish(unitTopic(signal.kind, unit), signal.id);
    },
    resync() {
      for (const [topic, set] of byTopic) {
        const colon = topic.indexOf(':');
        if (colon < 0) continue;
        const id = topic.slice(colon + 1);
        for (const s of set) push(s, id);
      }
    },
    revoke(tokenId) {
      for (const set of [...byTopic.values()]) for (const s of [...set]) {
        if (s.tokenId !== tokenId) continue;
        s.pending.clear();
        finish(s);
      }
    },
    ready: () => opts.presence?.ready() ?? Promise.resolve(),
    wants(kind) {
      for (const topic of byTopic.keys()) if (topic.startsWith(`${kind}:`) || topic.startsWith(`${kind}@`)) return true;
      return false;
    },
    count(owner) {
      return owner !== undefined ? (perOwner.get(owner) ?? 0) : open;
    },
    close() {
      closed = true;
      for (const set of [...byTopic.values()]) for (const s of [...set]) {
        s.pending.clear();
        finish(s);
      }
    },
  };
}
