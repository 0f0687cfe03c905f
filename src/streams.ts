// Reading a body without trusting its size: chunk by chunk, stopping as soon as more than the limit has arrived,
// so memory per body is bounded by the limit whatever the other side sends (or announces).

export type CappedRead = { ok: true; bytes: Buffer } | { ok: false; receivedBytes: number };

/**
 * The whole body, or `ok: false` once more than `maxBytes` arrived. `onOverflow` runs before the stream is
 * cancelled (to close a socket rather than drain it). A stream that breaks mid-way rejects, as its reader does.
 */
export async function readCapped(body: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | null, maxBytes: number, onOverflow?: () => void): Promise<CappedRead> {
  if (!body) return { ok: true, bytes: Buffer.alloc(0) };
  // A web stream or a Node stream (undici's answers, an IncomingMessage): both are async iterables; their `return`
  // cancels (web) or destroys (Node) the stream.
  const chunks = (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  const kept: Uint8Array[] = [];
  let received = 0;
  for (;;) {
    const { done, value } = await chunks.next();
    if (done) break;
    received += value.byteLength;
    if (received > maxBytes) {
      onOverflow?.();
      await chunks.return?.().catch(() => undefined);
      return { ok: false, receivedBytes: received };
    }
    kept.push(value);
  }
  return { ok: true, bytes: Buffer.concat(kept) };
}

/** A Content-Length header as a number, or null when absent or not a plain count. */
export function declaredLength(header: string | null | undefined): number | null {
  if (header == null || !/^\s*\d{1,16}\s*$/.test(header)) return null;
  return Number(header);
}
