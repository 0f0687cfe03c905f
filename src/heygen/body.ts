// Reads an HTTP answer body without trusting its size. HeyGen's answers are a few kilobytes; a proxy
// error page, a fault or a hostile base URL can send gigabytes. Reading the whole thing first is what
// took three 400 MB answers to 3.7 GB of RSS, so the body is read chunk by chunk and the connection is
// dropped as soon as the limit is passed: memory per answer is bounded by the limit, whatever is sent.

import { declaredLength, readCapped } from '../streams.js';

export type CappedBody =
  | { ok: true; text: string }
  | { ok: false; declaredBytes: number | null; receivedBytes: number };

/**
 * The body as UTF-8 text (a leading BOM dropped, as `Response.text()` does), or `ok: false` once more than
 * `maxBytes` arrive or are announced by Content-Length. `abort` must end the request (it is called before
 * the stream is cancelled, so the socket is closed rather than drained).
 */
export async function readBodyCapped(response: Response, maxBytes: number, abort: () => void): Promise<CappedBody> {
  const declared = declaredLength(response.headers.get('content-length'));
  if (declared !== null && declared > maxBytes) {
    abort();
    await response.body?.cancel().catch(() => undefined);
    return { ok: false, declaredBytes: declared, receivedBytes: 0 };
  }
  const read = await readCapped(response.body, maxBytes, abort);
  if (!read.ok) return { ok: false, declaredBytes: declared, receivedBytes: read.receivedBytes };
  return { ok: true, text: new TextDecoder('utf-8').decode(read.bytes) };
}
