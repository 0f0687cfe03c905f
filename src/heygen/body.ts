// Reads an HTTP answer body without trusting its size. HeyGen's answers are a few kilobytes; a proxy
// error page, a fault or a hostile base URL can send gigabytes. Reading the whole thing first is what
// took three 400 MB answers to 3.7 GB of RSS, so the body is read chunk by chunk and the connection is
// dropped as soon as the limit is passed: memory per answer is bounded by the limit, whatever is sent.

import { declaredLength, readCapped } from '../streams.js';

export type CappedBody =
  | { ok: true; text: string }
  | { ok: false; declaredBytes: number | null; receivedBytes: number };

/** The part of an undici answer body read here: its chunks, and destroying it (which closes the socket). */
export interface AnswerBody extends AsyncIterable<Uint8Array> {
  destroy(): unknown;
  on(event: 'error', listener: () => void): unknown;
}

const ignore = () => undefined;

/**
 * The body as UTF-8 text (a leading BOM dropped, as `Response.text()` does), or `ok: false` once more than
 * `maxBytes` arrive or are announced by Content-Length. An oversized body is destroyed, never drained: undici
 * then closes the connection rather than reading the rest.
 */
export async function readBodyCapped(contentLength: string | string[] | undefined, body: AnswerBody, maxBytes: number): Promise<CappedBody> {
  // Destroying it unread reports an abort error on the stream: expected here, not an unhandled error.
  const drop = () => {
    body.on('error', ignore);
    body.destroy();
  };
  const declared = declaredLength(typeof contentLength === 'string' ? contentLength : null);
  if (declared !== null && declared > maxBytes) {
    drop();
    return { ok: false, declaredBytes: declared, receivedBytes: 0 };
  }
  const read = await readCapped(body, maxBytes, drop);
  if (!read.ok) return { ok: false, declaredBytes: declared, receivedBytes: read.receivedBytes };
  return { ok: true, text: new TextDecoder('utf-8').decode(read.bytes) };
}
