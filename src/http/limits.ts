import { HTTPException } from 'hono/http-exception';
import { declaredLength, readCapped } from '../streams.js';

/** The body, or null when it is (declared or found while reading) larger than `limit` bytes. */
export async function readBodyCapped(request: Request, limit: number): Promise<Buffer | null> {
  if ((declaredLength(request.headers.get('content-length')) ?? 0) > limit) return null;
  try {
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
  if (!/json/i.test(type) || !response.body) return response;
  const read = await readCapped(response.body, maxBytes);
  if (!read.ok) {
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
  const headers = new Headers(response.headers);
  headers.set('content-length', String(read.bytes.length));
  return new Response(new Uint8Array(read.bytes), { status: response.status, headers });
}
