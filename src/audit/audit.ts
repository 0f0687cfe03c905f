// The audit trail: who changed what, with the state before and after. Written in the same transaction as
// the change it describes, so a change without its audit event cannot commit.
import type { Db } from '../db/client.js';
import { auditEventsTable } from '../db/schema.js';
import type { Actor } from '../auth/actor.js';

export interface AuditEvent {
  action: string;
  entityType: string;
  entityId: string;
  before?: unknown;
  after?: unknown;
}

/** JSON-safe copy: bigints become decimal strings, Dates ISO strings. */
function jsonSafe(value: unknown): unknown {
  if (value === undefined) return null;
  return JSON.parse(JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
}

export async function recordAudit(tx: Db, actor: Actor, event: AuditEvent): Promise<void> {
  await tx.insert(auditEventsTable).values({
    actorSubject: actor.subject,
    actorRole: actor.role,
    actorTokenId: actor.tokenId,
    requestId: actor.requestId ?? null,
    action: event.action,
    entityType: event.entityType,
    entityId: event.entityId,
    before: jsonSafe(event.before),
    after: jsonSafe(event.after),
  });
}
