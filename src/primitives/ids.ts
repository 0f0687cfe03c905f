// Ids of the rows the gateway creates: time-ordered UUIDs (version 7, RFC 9562: 48 bits of Unix milliseconds, then
// random bits), so that each table's primary key, and every index led by such an id (a job's ledger entries, items,
// audit events and outbox events name their job), grows at its right edge like a sequence, instead of at a random
// page of the whole index. With random (version 4) ids each new job wrote into a random leaf page of nine indexes;
// after every checkpoint PostgreSQL logs each page's first change whole (a full-page image), so most of a job's WAL
// was pages copied, and a grown index's pages had to be read back from disk to be changed (docs/benchmark.md,
// "time-ordered ids"). Ids made in the same millisecond by one process follow a counter (the uuid package's v7:
// a 32-bit counter from a random start, then 42 fresh random bits), so an id is not a secret and is never used as one:
// every read of a row checks its caller's rights. An id reveals its row's creation time to whoever sees it, who can
// see that time anyway (every such row has its own created_at). Units and accounts made after this change sort before
// most of those made before it (lists ordered by id page correctly either way).
import { v7 } from 'uuid';

/** A new row id, time-ordered (UUID version 7). */
export function newRowId(): string {
  return v7();
}
