import { readCapped } from '../streams.js';

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
