// A GraphQL-over-SSE client for tests: POST /graphql with `Accept: text/event-stream`, events parsed as they come.
export interface SseEvent {
  event: string;
  data: any;
}

export interface Subscription {
  /** The next `next` payload (or null once the stream completed); rejects after timeoutMs. */
  next(timeoutMs?: number): Promise<any | null>;
  /** Every event seen so far, `complete` included. */
  readonly events: SseEvent[];
  /** Resolves once the server ended the stream (`complete`, then the end of the body). */
  readonly ended: Promise<void>;
  close(): void;
}

export async function subscribe(url: string, query: string, variables: Record<string, unknown>, token: string): Promise<Subscription> {
  const abort = new AbortController();
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
    signal: abort.signal,
  });
  if (!res.ok || !res.headers.get('content-type')?.startsWith('text/event-stream')) {
    throw new Error(`not an event stream: ${res.status} ${await res.text()}`);
  }
  const events: SseEvent[] = [];
  const queue: (any | null)[] = [];
  const waiters: ((v: any | null) => void)[] = [];
  const deliver = (v: any | null) => {
    const w = waiters.shift();
    if (w) w(v);
    else queue.push(v);
  };
  const ended = (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = '';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data += line.slice(5).trim();
          }
          if (!event) continue; // a keep-alive comment
          const parsed = event === 'next' ? JSON.parse(data) : null;
          events.push({ event, data: parsed });
          if (event === 'next') deliver(parsed);
          if (event === 'complete') deliver(null);
        }
      }
    } catch (error) {
      if (!abort.signal.aborted) throw error;
    } finally {
      deliver(null);
    }
  })();
  return {
    events,
    ended,
    next(timeoutMs = 10_000) {
      if (queue.length > 0) return Promise.resolve(queue.shift());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no event within the time limit')), timeoutMs);
        waiters.push((v) => {
          clearTimeout(timer);
          resolve(v);
        });
      });
    },
    close() {
      abort.abort();
    },
  };
}
