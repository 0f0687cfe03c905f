// Live updates over Server-Sent Events (graphql-sse, one stream per subscription). A stream that drops (the gateway
// restarted or closed it, the network failed) is opened again after a growing, jittered delay, for as long as the
// page follows it; the caller polls in the meantime and reads again once the stream is back (events sent while it
// was down are not replayed).
import { createClient as createSseClient, type Client as SseClient } from 'graphql-sse';
import { stringifyDocument, type AnyVariables, type TypedDocumentNode } from '@urql/core';

export type { SseClient };

/** The first retry waits about RETRY_FIRST_MS, each further one twice as long, up to RETRY_MAX_MS. */
export const RETRY_FIRST_MS = 1_000;
export const RETRY_MAX_MS = 30_000;

export function createLiveClient(token: string): SseClient {
  const url = new URL('/graphql', window.location.origin).toString();
  // The retries are ours (follow): graphql-sse's own only cover network errors, not a stream the server ended.
  return createSseClient({ url, headers: { authorization: `Bearer ${token}` }, retryAttempts: 0 });
}

/** The delay before the `attempt`-th retry (0 first): between half and all of RETRY_FIRST_MS × 2^attempt, capped. */
export function retryDelay(attempt: number, random = Math.random): number {
  const ceiling = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** attempt);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export interface Follower<T> {
  /** An event with data. */
  data(data: T): void;
  /** The stream is open; `reopened`: after a drop, so events may have been missed. */
  open(reopened: boolean): void;
  /** The stream dropped, ended or was refused: it is retried after retryDelay. */
  closed(reason: string): void;
}

/** Follows a subscription until the returned function is called, opening it again whenever it drops. */
export function follow<T, V extends AnyVariables>(live: SseClient, document: TypedDocumentNode<T, V>, variables: V, on: Follower<T>): () => void {
  const query = stringifyDocument(document);
  let stopped = false;
  let attempt = 0;
  let opened = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let dispose: (() => void) | undefined;
  const retry = (reason: string) => {
    if (stopped) return;
    dispose = undefined;
    on.closed(reason);
    timer = setTimeout(open, retryDelay(attempt++));
  };
  const open = () => {
    let ended = false;
    const end = (reason: string) => {
      if (ended) return;
      ended = true;
      retry(reason);
    };
    dispose = live.subscribe<T>(
      { query, variables: variables as Record<string, unknown> },
      {
        next: (result) => {
          if (result.errors?.length || !result.data) return end(result.errors?.[0]?.message ?? 'no data');
          // A stream that carries events is healthy: the next drop starts the delays afresh.
          attempt = 0;
          on.data(result.data);
        },
        error: (error) => end(error instanceof Error ? error.message : 'the stream failed'),
        complete: () => end('the stream ended'),
      },
      {
        connected: () => {
          on.open(opened);
          opened = true;
        },
      },
    );
  };
  open();
  return () => {
    stopped = true;
    clearTimeout(timer);
    dispose?.();
  };
}
