import { HTTPException } from 'hono/http-exception';
import { declaredLength, readCapped } from '../streams.js';

/** The body, or null when it is (declared or found while reading) larger than `limit` bytes. */
export async function readBodyCapped(request: Request, limit: number): Promise<Buffer | null> {
  const declared = declaredLength(request.headers.get('content-length'));
  if ((declared ?? 0) > limit) return null;
  try {
    if (declared !== null) {
      // Node's parser delivers exactly the declared bytes: read at once (a request made by @hono/node-server reads
      // them straight from the socket, without web streams). Checked again for a Request built in-process.
      const bytes = Buffer.from(await request.arrayBuffer());
      return bytes.length > limit ? null : bytes;
    }
    const read = await readCapped(request.body, limit);
    return read.ok ? read.bytes : null;
  } catch {
    // The client went away mid-body (or sent a broken chunked encoding): nothing to answer to.
    throw new HTTPException(400, { message: 'request body could not be read' });
  }
}

// The total size of a GraphQL answer is capped: a page-size or cost limit bounds one list, this bounds the sum.
/** JSON answers larger than `maxBytes` are replaced by a typed RESPONSE_TOO_LARGE error; others pass unchanged. */
export async function capGraphQLResponse(response: Response, maxBytes: number): Promise<Response> {
  const type = response.headers.get('content-type') ?? '';
  if (!/json/i.test(type)) return response;
  // Yoga answers JSON with one string of declared length: over the limit it is never read; within it, it is taken as
  // it is (no stream over it), and checked again.
  const declared = declaredLength(response.headers.get('content-length'));
  if (declared !== null) {
    const text = declared > maxBytes ? null : await response.text();
    if (text === null || Buffer.byteLength(text) > maxBytes) return tooLarge(maxBytes, type);
    return new Response(text, { status: response.status, headers: response.headers });
  }
  if (!response.body) return response;
  const read = await readCapped(response.body, maxBytes);
  if (!read.ok) return tooLarge(maxBytes, type);
  const headers = new Headers(response.headers);
  headers.set('content-length', String(read.bytes.length));
  return new Response(new Uint8Array(read.bytes), { status: response.status, headers });
}

function tooLarge(maxBytes: number, type: string): Response {
  const body = JSON.stringify({
    data: null,
    errors: [
      {
        message: `the answer would be larger than ${maxBytes} bytes: ask for fewer fields or smaller pages`,
        extensions: { code: 'RESPONSE_TOO_LARGE', maxBytes },
      },
    ],
  });
  return new Response(body, { status: 200, headers: { 'content-type': type } });
}
