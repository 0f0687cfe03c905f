// Real, small media files made in code, and a loopback server that serves them with or without range support.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** PCM WAV, 8 kHz mono 8-bit silence: 8,000 bytes per second. */
export function wav(milliseconds: number): Buffer {
  const rate = 8000;
  const dataBytes = Math.round((milliseconds * rate) / 1000);
  const b = Buffer.alloc(44 + dataBytes, 0x80);
  b.write('RIFF', 0, 'ascii');
  b.writeUInt32LE(36 + dataBytes, 4);
  b.write('WAVE', 8, 'ascii');
  b.write('fmt ', 12, 'ascii');
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20); // PCM
  b.writeUInt16LE(1, 22); // mono
  b.writeUInt32LE(rate, 24);
  b.writeUInt32LE(rate, 28); // byte rate
  b.writeUInt16LE(1, 32); // block align
  b.writeUInt16LE(8, 34); // bits per sample
  b.write('data', 36, 'ascii');
  b.writeUInt32LE(dataBytes, 40);
  return b;
}

function box(type: string, ...payload: Buffer[]): Buffer {
  const body = Buffer.concat(payload);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + body.length, 0);
  head.write(type, 4, 'ascii');
  return Buffer.concat([head, body]);
}

/**
 * An MP4 with one AAC audio track of `milliseconds` (movie and media headers say so), and `padding` bytes of
 * media data placed before the moov box when `moovAtEnd` (so the duration sits near the end of a large file).
 */
export function mp4(milliseconds: number, opts: { padding?: number; moovAtEnd?: boolean } = {}): Buffer {
  const ftyp = box('ftyp', Buffer.from('isom', 'ascii'), Buffer.from([0, 0, 2, 0]), Buffer.from('isomiso2mp41', 'ascii'));
  const mvhd = Buffer.alloc(100);
  mvhd.writeUInt32BE(1000, 12); // timescale: ms
  mvhd.writeUInt32BE(milliseconds, 16);
  mvhd.writeUInt32BE(0x00010000, 20); // rate 1.0
  mvhd.writeUInt16BE(0x0100, 24); // volume 1.0
  mvhd.writeUInt32BE(0x00010000, 36); // unity matrix
  mvhd.writeUInt32BE(0x00010000, 52);
  mvhd.writeUInt32BE(0x40000000, 68);
  mvhd.writeUInt32BE(2, 96); // next track id
  const mdhd = Buffer.alloc(24);
  mdhd.writeUInt32BE(48_000, 12); // timescale: the sample rate
  mdhd.writeUInt32BE(milliseconds * 48, 16);
  mdhd.writeUInt16BE(0x55c4, 20); // language 'und'
  const hdlr = Buffer.concat([Buffer.alloc(8), Buffer.from('soun', 'ascii'), Buffer.alloc(12), Buffer.from([0])]);
  const entry = Buffer.alloc(28);
  entry.writeUInt16BE(1, 6); // data reference index
  entry.writeUInt16BE(2, 16); // channels
  entry.writeUInt16BE(16, 18); // sample size
  entry.writeUInt32BE(48_000 * 65536, 24); // sample rate, 16.16
  const stsdHead = Buffer.alloc(8);
  stsdHead.writeUInt32BE(1, 4); // one entry
  const stsd = box('stsd', stsdHead, box('mp4a', entry));
  const tkhd = Buffer.alloc(84);
  tkhd.writeUInt32BE(3, 0); // enabled, in movie
  tkhd.writeUInt32BE(1, 12); // track id
  tkhd.writeUInt32BE(milliseconds, 20);
  tkhd.writeUInt16BE(0x0100, 36); // volume 1.0
  tkhd.writeUInt32BE(0x00010000, 40); // unity matrix
  tkhd.writeUInt32BE(0x00010000, 56);
  tkhd.writeUInt32BE(0x40000000, 72);
  const trak = box('trak', box('tkhd', tkhd), box('mdia', box('mdhd', mdhd), box('hdlr', hdlr), box('minf', box('stbl', stsd, box('stts', Buffer.alloc(8)), box('stsz', Buffer.alloc(12))))));
  const moov = box('moov', box('mvhd', mvhd), trak);
  const mdat = box('mdat', Buffer.alloc(opts.padding ?? 0));
  return opts.moovAtEnd ? Buffer.concat([ftyp, mdat, moov]) : Buffer.concat([ftyp, moov, mdat]);
}

/** MPEG-1 Layer III, 32 kbit/s at 48 kHz, CBR silence: 96-byte frames of 24 ms. */
export function mp3(milliseconds: number): Buffer {
  const frames = Math.ceil(milliseconds / 24);
  const frame = Buffer.alloc(96, 0);
  // sync 0xFFE, MPEG-1 (11), Layer III (01), no CRC (1) → 0xFFFB; bitrate index 1 (32k) + 48 kHz (01) + no pad → 0x14; stereo mode 11 (mono) → 0xC4
  frame[0] = 0xff;
  frame[1] = 0xfb;
  frame[2] = 0x14;
  frame[3] = 0xc4;
  return Buffer.concat(Array.from({ length: frames }, () => frame));
}

export interface MediaServer {
  url(path: string): string;
  /** Bytes sent per path, to show that large files are read in ranges, not whole. */
  bytesSent: Map<string, number>;
  close(): Promise<void>;
}

/** Serves `files` on 127.0.0.1 (port 0); paths under /norange/ ignore Range headers; anything else is a 404. */
export async function startMediaServer(files: Record<string, { body: Buffer; type: string }>): Promise<MediaServer> {
  const bytesSent = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const file = files[path.replace(/^\/norange/, '')];
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    const send = (status: number, headers: Record<string, string | number>, body: Buffer) => {
      bytesSent.set(path, (bytesSent.get(path) ?? 0) + body.length);
      res.writeHead(status, { 'content-type': file.type, 'content-length': body.length, ...headers });
      res.end(body);
    };
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (!path.startsWith('/norange/') && range) {
      const start = Number(range[1]);
      const end = Math.min(range[2] ? Number(range[2]) : file.body.length - 1, file.body.length - 1);
      if (start >= file.body.length) {
        res.writeHead(416, { 'content-range': `bytes */${file.body.length}` }).end();
        return;
      }
      send(206, { 'accept-ranges': 'bytes', 'content-range': `bytes ${start}-${end}/${file.body.length}` }, file.body.subarray(start, end + 1));
      return;
    }
    send(200, {}, file.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    bytesSent,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
