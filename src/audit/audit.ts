// The audit trail: who changed what, with the state before and after. Written in the same transaction as
// the change it describes, so a change without its audit event cannot commit, and a refused change (which
// rolls back) leaves none. The table is append-only: a trigger refuses UPDATE, DELETE and TRUNCATE.
import type { Db } from '../db/client.js';
import { auditEventsTable } from '../db/schema.js';
import type { Actor } from '../auth/actor.js';
import { redactSecrets } from '../secrets/redact.js';

export interface AuditEvent {
  /** `entity.verb`, e.g. `budget.set`, `serviceToken.revoke`. */
  action: string;
  /** The GraphQL type of the entity (`Budget`, `OrgUnit`…), so that `encodeGlobalID(entityType, entityId)` names it. */
  entityType: string;
  entityId: string;
  before?: unknown;
  after?: unknown;
}

/**
 * Keys whose values are secrets, whatever a caller passes: API keys, webhook secrets, bearer tokens, private keys and
 * their ciphertexts. Callers pass hints (`apiKeyHint`) instead; this is the safety net if one passes a whole row.
 */
const SECRET_KEY = /^(api_?key|webhook_?secret|secret|token|bearer|password|private_?key|private_?jwk)$|ciphertext$/i;
export const REDACTED = '[redacted]';

/**
 * JSON-safe copy: bigints become decimal strings, Dates ISO strings, secret-named keys `[redacted]`, and any known
 * secret inside a string value goes through the one redaction (src/secrets/redact.ts).
 */
export function auditPayload(value: unknown): unknown {
  if (value === undefined || value === null) return null;
  return JSON.parse(
    JSON.stringify(value, (key, v: unknown) => {
      if (key !== '' && SECRET_KEY.test(key) && v !== null && v !== undefined) return REDACTED;
      if (typeof v === 'string') return redactSecrets(v);
      return typeof v === 'bigint' ? v.toString() : v;
    }),
  );
}

/** Who an audit event names: a caller, or the gateway itself for what its workers decide (an expired hold, an overrun). */
export type AuditActor = Pick<Actor, 'subject' | 'tokenId' | 'requestId'> & { readonly role: Actor['role'] | 'SYSTEM' };
export const SYSTEM_ACTOR: AuditActor = { subject: 'gateway', role: 'SYSTEM', tokenId: null };

/** The audit row of an event (what recordAudit inserts; the admission function inserts it itself). */
export function auditRow(actor: AuditActor, event: AuditEvent): typeof auditEventsTable.$inferInsert {
  return {
    actorSubject: actor.subject,
    actorRole: actor.role,
    actorTokenId: actor.tokenId,
    requestId: actor.requestId ?? null,
    action: event.action,
    entityType: event.entityType,
    entityId: event.entityId,
    before: auditPayload(event.before),
    after: auditPayload(event.after),
  };
}

export async function recordAudit(tx: Db, actor: AuditActor, event: AuditEvent): Promise<void> {
  await tx.insert(auditEventsTable).values(auditRow(actor, event));
}
