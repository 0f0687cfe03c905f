// Reads the duration of a media file that a HeyGen request points at, without downloading it whole:
// HTTP range requests through a random-access tokenizer, a byte budget and a time limit for the whole
// measurement, and addresses checked after DNS resolution (the checked address is the one connected to),
// so that a caller cannot make the gateway read its internal network.
import http from 'node:http';
import https from 'node:https';
import dns from 'node:dns';
import net from 'node:net';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import type { IRangeRequestClient, IRangeRequestResponse } from '@tokenizer/range';

// The parsers load on the first measurement: most processes never measure media, and they cost memory at start.
const parsers = () => Promise.all([import('music-metadata'), import('@tokenizer/range')]);

export interface MediaProbeLimits {
  /** Time allowed for one whole measurement (every request it makes). */
  readonly timeoutMs: number;
  /** Bytes one measurement may read in total; a file that needs more is refused as oversized. */
  readonly maxBytes: number;
  /** Loopback, private, link-local and other non-public addresses are refused unless this is true. */
  readonly allowPrivate: boolean;
  /** Bytes left for all the measurements of one request, when they share a budget. */
  readonly shared?: { bytesLeft: number };
}

export type MediaErrorReason = 'unreachable' | 'forbidden_address' | 'oversized' | 'unparseable' | 'timeout';

/** Why a media file could not be measured; the message names no secret and no internal address. */
export class MediaError extends Error {
  constructor(
    readonly reason: MediaErrorReason,
    message: string,
  ) {
    super(message);
    this.name = 'MediaError';
  }
}

const MICRO_PER_MS = 1000n;
const MAX_REDIRECTS = 3;
const FIRST_CHUNK = 64 * 1024;

/** Seconds (a float from the parser) to whole milliseconds, rounded up, as micro-seconds. */
export function mediaSecondsToMicro(seconds: number): bigint {
  if (!Number.isFinite(seconds) || seconds <= 0) throw new MediaError('unparseable', 'the media has no positive duration');
  return BigInt(Math.ceil(seconds * 1000 - 1e-6)) * MICRO_PER_MS;
}

/** True for an address a request may reach without allowPrivate: public unicast only. */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  const parsed = ipaddr.process(address); // IPv4-mapped IPv6 is judged as the IPv4 address it carries
  return parsed.range() === 'unicast';
}

/**
 * A DNS lookup for outgoing requests that fails (code EADDRNOTALLOWED) when the name resolves to any non-public
 * address, unless allowPrivate: the address checked is the one connected to, so DNS rebinding cannot slip past it.
 */
export function checkedLookup(allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { all: true, family: options.family ?? 0 }, (error, addresses) => {
      if (error) return callback(error, '', 4);
      const list = addresses as dns.LookupAddress[];
      const refused = !allowPrivate && (list.length === 0 || list.some((a) => !isPublicAddress(a.address)));
      if (refused) {
        return callback(Object.assign(new Error('address not allowed'), { code: 'EADDRNOTALLOWED' }), '', 4);
      }
      if (options.all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, list);
      const first = list[0]!;
      return callback(null, first.address, first.family);
    });
  };
}

interface RangeReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Uint8Array;
}

/** One measurement's HTTP access: the byte budget and deadline are shared by all its requests. */
class RangeClient implements IRangeRequestClient {
  private used = 0;
  private whole: Uint8Array | null = null;
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private mimeType: string | undefined;

  constructor(
    private readonly url: URL,
    private readonly limits: MediaProbeLimits,
  ) {
    this.timer = setTimeout(() => this.controller.abort(), limits.timeoutMs);
    this.timer.unref();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  close(): void {
    clearTimeout(this.timer);
    this.controller.abort();
  }

  abort(): void {
    this.controller.abort();
  }

  async getResponse(_method: string, range?: [number, number]): Promise<IRangeRequestResponse> {
    if (this.whole) return this.slice(this.whole, range);
    const reply = await this.request(this.url, range, 0);
    const size = this.totalSize(reply);
    if (reply.status === 200) {
      // The server ignored the range: the body is the whole file, read within the byte budget.
      this.whole = reply.body;
      return this.slice(reply.body, range);
    }
    const first = range?.[0] ?? 0;
    return {
      size,
      mimeType: this.mimeType,
      acceptPartialRequests: true,
      contentRange: { firstBytePosition: first, lastBytePosition: first + reply.body.length - 1, instanceLength: size },
      arrayBuffer: async () => reply.body,
    };
  }

  private slice(whole: Uint8Array, range?: [number, number]): IRangeRequestResponse {
    const first = Math.min(range?.[0] ?? 0, whole.length);
    const last = Math.min(range?.[1] ?? whole.length - 1, whole.length - 1);
    const body = whole.subarray(first, last + 1);
    return {
      size: whole.length,
      mimeType: this.mimeType,
      acceptPartialRequests: true,
      contentRange: { firstBytePosition: first, lastBytePosition: last, instanceLength: whole.length },
      arrayBuffer: async () => body,
    };
  }

  private totalSize(reply: RangeReply): number {
    if (reply.status === 200) return reply.body.length;
    const match = /^bytes (\d+)-(\d+)\/(\d+)$/i.exec(String(reply.headers['content-range'] ?? '').trim());
    if (!match) throw new MediaError('unparseable', 'the media server sent a partial response without a usable Content-Range');
    return Number(match[3]);
  }

  private request(url: URL, range: [number, number] | undefined, redirects: number): Promise<RangeReply> {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return Promise.reject(new MediaError('unreachable', 'the media URL must be http or https'));
    }
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (net.isIP(host) && !this.limits.allowPrivate && !isPublicAddress(host)) {
      return Promise.reject(new MediaError('forbidden_address', 'the media URL points at a private, loopback or link-local address'));
    }
    const transport = url.protocol === 'https:' ? https : http;
    return new Promise<RangeReply>((resolve, reject) => {
      const req = transport.request(
        url,
        {
          method: 'GET',
          headers: { range: `bytes=${range?.[0] ?? 0}-${range?.[1] ?? FIRST_CHUNK - 1}`, 'accept-encoding': 'identity' },
          lookup: checkedLookup(this.limits.allowPrivate),
          signal: this.controller.signal,
        },
        (res) => {
          const status = res.statusCode ?? 0;
          if (status >= 300 && status < 400 && res.headers.location) {
            res.resume();
            if (redirects >= MAX_REDIRECTS) return reject(new MediaError('unreachable', 'the media URL redirects too often'));
            let next: URL;
            try {
              next = new URL(res.headers.location, url);
            } catch {
              return reject(new MediaError('unreachable', 'the media URL redirects to an invalid location'));
            }
            return this.request(next, range, redirects + 1).then(resolve, reject);
          }
          if (status !== 200 && status !== 206) {
            res.resume();
            return reject(new MediaError('unreachable', `the media URL answered HTTP ${status}`));
          }
          this.mimeType ??= typeof res.headers['content-type'] === 'string' ? res.headers['content-type'] : undefined;
          const declared = Number(res.headers['content-length'] ?? NaN);
          if (Number.isFinite(declared) && (this.used + declared > this.limits.maxBytes || declared > (this.limits.shared?.bytesLeft ?? Infinity))) {
            res.destroy();
            return reject(this.oversized());
          }
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => {
            this.used += chunk.length;
            if (this.limits.shared) this.limits.shared.bytesLeft -= chunk.length;
            if (this.used > this.limits.maxBytes || (this.limits.shared?.bytesLeft ?? 0) < 0) {
              res.destroy();
              reject(this.oversized());
              return;
            }
            chunks.push(chunk);
          });
          res.on('end', () => resolve({ status, headers: res.headers, body: new Uint8Array(Buffer.concat(chunks)) }));
          res.on('error', (error) => reject(error));
        },
      );
      req.on('error', (error: NodeJS.ErrnoException) => {
        if (error instanceof MediaError) return reject(error);
        if (error.code === 'EADDRNOTALLOWED') {
          return reject(new MediaError('forbidden_address', 'the media URL resolves to a private, loopback or link-local address'));
        }
        if (this.controller.signal.aborted) return reject(new MediaError('timeout', `the media could not be read within ${this.limits.timeoutMs} ms`));
        reject(new MediaError('unreachable', 'the media URL could not be reached'));
      });
      req.end();
    });
  }

  private oversized(): MediaError {
    return new MediaError('oversized', `reading the media's duration would take more than ${this.limits.maxBytes} bytes`);
  }
}

function toMediaError(error: unknown, client: RangeClient | null, limits: MediaProbeLimits): MediaError {
  if (error instanceof MediaError) return error;
  if (client?.signal.aborted) return new MediaError('timeout', `the media could not be read within ${limits.timeoutMs} ms`);
  return new MediaError('unparseable', 'the media is not an audio or video file whose duration can be read');
}

/** Duration of the media at `url`, in micro-seconds (whole milliseconds, rounded up). */
export async function measureMediaUrl(url: string, limits: MediaProbeLimits): Promise<bigint> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new MediaError('unreachable', 'the media URL is not a valid URL');
  }
  const client = new RangeClient(parsed, limits);
  try {
    const [{ parseFromTokenizer }, { tokenizer: rangeTokenizer }] = await parsers();
    const tokenizer = await rangeTokenizer(client, { avoidHeadRequests: true, initialChunkSize: FIRST_CHUNK, minimumChunkSize: 16 * 1024 });
    const metadata = await parseFromTokenizer(tokenizer, { duration: false, skipCovers: true, skipPostHeaders: true });
    return mediaSecondsToMicro(metadata.format.duration ?? 0);
  } catch (error) {
    throw toMediaError(error, client, limits);
  } finally {
    client.close();
  }
}

/** Duration of inline media (a base64 `data` input), in micro-seconds. */
export async function measureMediaBytes(bytes: Uint8Array, mediaType: string | undefined, limits: MediaProbeLimits): Promise<bigint> {
  if (bytes.length > limits.maxBytes) throw new MediaError('oversized', `inline media is larger than ${limits.maxBytes} bytes`);
  try {
    const [{ parseBuffer }] = await parsers();
    const metadata = await parseBuffer(bytes, mediaType ? { mimeType: mediaType } : undefined, { duration: false, skipCovers: true });
    return mediaSecondsToMicro(metadata.format.duration ?? 0);
  } catch (error) {
    throw toMediaError(error, null, limits);
  }
}
