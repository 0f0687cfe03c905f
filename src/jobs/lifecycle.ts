// The one place that knows which job states may follow which.
import type { JobStatus } from '../db/schema.js';

export const IN_FLIGHT_STATUSES = ['RESERVED', 'SUBMIT_UNKNOWN', 'SUBMITTED', 'PROCESSING'] as const satisfies readonly JobStatus[];
export const TERMINAL_STATUSES = ['SUCCEEDED', 'FAILED', 'CANCELLED', 'REJECTED', 'EXPIRED'] as const satisfies readonly JobStatus[];

export type JobEvent =
  /** A slot is its turn: the dispatcher claims the queued job for forwarding (src/jobs/queue.ts). */
  | 'DISPATCH'
  /** HeyGen answered 429 (its own count of slots is full: other clients of the key): back to the queue, not failed. */
  | 'REQUEUE'
  | 'FORWARD_ACCEPTED'
  | 'FORWARD_UNKNOWN'
  | 'FORWARD_REJECTED'
  | 'UPSTREAM_PROCESSING'
  | 'UPSTREAM_COMPLETED'
  | 'UPSTREAM_FAILED'
  | 'CANCEL'
  /** The hold outlived its deadline (or the submission stayed unresolved past HeyGen's idempotency window). */
  | 'EXPIRE';

const TRANSITIONS: Record<JobEvent, Partial<Record<JobStatus, JobStatus>>> = {
  DISPATCH: { QUEUED: 'RESERVED' },
  REQUEUE: { RESERVED: 'QUEUED', SUBMIT_UNKNOWN: 'QUEUED' },
  FORWARD_ACCEPTED: { RESERVED: 'SUBMITTED', SUBMIT_UNKNOWN: 'SUBMITTED' },
  FORWARD_UNKNOWN: { RESERVED: 'SUBMIT_UNKNOWN', SUBMIT_UNKNOWN: 'SUBMIT_UNKNOWN' },
  FORWARD_REJECTED: { RESERVED: 'FAILED', SUBMIT_UNKNOWN: 'FAILED' },
  UPSTREAM_PROCESSING: { SUBMITTED: 'PROCESSING', PROCESSING: 'PROCESSING' },
  UPSTREAM_COMPLETED: { SUBMITTED: 'SUCCEEDED', PROCESSING: 'SUCCEEDED' },
  UPSTREAM_FAILED: { SUBMITTED: 'FAILED', PROCESSING: 'FAILED', SUBMIT_UNKNOWN: 'FAILED' },
  CANCEL: { QUEUED: 'CANCELLED', RESERVED: 'CANCELLED' },
  EXPIRE: { QUEUED: 'EXPIRED', RESERVED: 'EXPIRED', SUBMIT_UNKNOWN: 'EXPIRED', SUBMITTED: 'EXPIRED', PROCESSING: 'EXPIRED' },
};

/** The state after an event, or null when the event does not apply to the current state. */
export function nextStatus(current: JobStatus, event: JobEvent): JobStatus | null {
  return TRANSITIONS[event][current] ?? null;
}

export function isTerminal(status: JobStatus): boolean {
  return (TERMINAL_STATUSES as readonly JobStatus[]).includes(status);
}
