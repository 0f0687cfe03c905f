// Group commit: calls of one kind and key (an account) that arrive while another of them is in flight in this process
// wait for it (no timer: a few ms under load, nothing when alone) and are then sent together, in arrival order, as one
// statement and one transaction. Each caller gets its own answer, the one it would have had alone.
import { isDatabaseUnavailable, type Db, type NamedStatement } from './client.js';
import { jsonValue } from './json-rows.js';

/** An answer of `many` that asks for the call to be made again alone (it failed inside the batch, rolled back alone). */
export const ALONE = Symbol('alone');

export interface GroupCommitCalls<P, A> {
  /** One call, alone. */
  one(db: Db, p: P): Promise<A>;
  /** Several calls in one statement and transaction, answered in their order. */
  many(db: Db, ps: P[]): Promise<(A | typeof ALONE)[]>;
}

interface Waiting<P, A> {
  p: P;
  resolve(answer: A): void;
  reject(error: unknown): void;
}

/**
 * `call(db, key, p, max)`: `p` is sent at once when no call of `key` is in flight on `db` in this process; otherwise it
 * waits for that call to end and goes with the others that arrived meanwhile, at most `max` per statement (`max` ≤ 1:
 * always alone). A batch that fails as a whole (not because the database is away) rolled back as a whole: each of its
 * calls is then made alone, one after the other, before the next batch, so that a bad one fails as it would alone and
 * the others go through in their order. With `max` ≤ 1 calls go at once, each alone: a caller with many calls to make
 * makes them one after the other itself.
 */
export function groupCommit<P, A>(calls: GroupCommitCalls<P, A>): (db: Db, key: string, p: P, max: number) => Promise<A> {
  const groups = new WeakMap<Db, Map<string, Waiting<P, A>[]>>();

  async function drain(db: Db, byKey: Map<string, Waiting<P, A>[]>, key: string, waiting: Waiting<P, A>[], max: number): Promise<void> {
    while (waiting.length > 0) {
      const batch = waiting.splice(0, max);
      if (batch.length === 1) {
        await calls.one(db, batch[0]!.p).then(batch[0]!.resolve, batch[0]!.reject);
        continue;
      }
      let answers: (A | typeof ALONE)[];
      try {
        answers = await calls.many(db, batch.map((w) => w.p));
      } catch (error) {
        if (isDatabaseUnavailable(error)) for (const w of batch) w.reject(error);
        else for (const w of batch) await calls.one(db, w.p).then(w.resolve, w.reject);
        continue;
      }
      // Answered in order; those to be made again alone are made one after the other, before the next batch.
      for (const [i, w] of batch.entries()) {
        const answer = answers[i];
        if (answer === ALONE || answer === undefined) await calls.one(db, w.p).then(w.resolve, w.reject);
        else w.resolve(answer);
      }
    }
    byKey.delete(key);
  }

  return async (db, key, p, max) => {
    if (max <= 1) return calls.one(db, p);
    let byKey = groups.get(db);
    if (!byKey) groups.set(db, (byKey = new Map()));
    const waiting = byKey.get(key);
    if (waiting) return new Promise<A>((resolve, reject) => waiting.push({ p, resolve, reject }));
    const mine: Waiting<P, A>[] = [];
    byKey.set(key, mine);
    try {
      return await calls.one(db, p);
    } finally {
      void drain(db, byKey, key, mine, max);
    }
  };
}

/**
 * The calls of a server-side function that takes one jsonb parameter and answers jsonb (`r`): alone by `one`, in a
 * batch by `many` (the array of the parameters, answered by the array of the answers). `alone`: the batch's answers
 * that ask for their call to be made again alone (it failed inside the batch and was rolled back alone).
 */
export function jsonCalls<P, A, B = never>(
  one: NamedStatement<{ r: A | string }>,
  many: NamedStatement<{ r: (A | B)[] | string }>,
  alone?: (answer: A | B) => answer is B,
): GroupCommitCalls<P, A> {
  return {
    async one(db, p) {
      const [row] = await one.rows(db, [JSON.stringify(p)]);
      return jsonValue(row!.r);
    },
    async many(db, ps) {
      const [row] = await many.rows(db, [JSON.stringify(ps)]);
      return jsonValue(row!.r).map((answer) => (alone?.(answer) ? ALONE : (answer as A)));
    },
  };
}
