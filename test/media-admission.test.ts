// Measured media instead of declared lengths: audio-driven avatar videos and translations are held at the
// length read from the media itself (real WAV / MP3 / MP4 files made in code, served on loopback), × outputs
// × margin × rate, exactly; a caller's "1" changes nothing; media that cannot be read is a typed
// ValidationError naming the field, with nothing written; large files are read in ranges, never whole.
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { createTree, issueServiceToken, JOB_QUERY, SUBMIT, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { mp3, mp4, startMediaServer, wav, type MediaServer } from './support/media.js';
import { queryRows } from '../src/db/client.js';
import { prepareJob } from '../src/jobs/estimate.js';
import { ValidationError } from '../src/errors.js';
import { isPublicAddress } from '../src/pricing/media.js';

let h: Harness;
let tree: Tree;
let token: string;
let media: MediaServer;
const MAX_BYTES = 256 * 1024;
const LARGE_MP4_BYTES = 3_000_000;

beforeAll(async () => {
  media = await startMediaServer({
    '/a.wav': { body: wav(12_345), type: 'audio/wav' },
    '/a.mp3': { body: mp3(10_000), type: 'audio/mpeg' },
    // 42.5 s, its moov box after 3 MB of media data: only range requests near both ends are needed.
    '/v.mp4': { body: mp4(42_500, { padding: LARGE_MP4_BYTES, moovAtEnd: true }), type: 'video/mp4' },
    '/big.wav': { body: wav(120_000), type: 'audio/wav' }, // 960 kB, served without range support below
    '/long.wav': { body: wav(600_500), type: 'audio/wav' }, // past HeyGen's 600 s audio limit
    '/text.txt': { body: Buffer.from('not audio at all '.repeat(100)), type: 'text/plain' },
  });
  h = await startHarness({ env: { MEDIA_PROBE_MAX_BYTES: String(MAX_BYTES) } });
  tree = await createTree(h, { name: 'Media' });
  token = (await issueServiceToken(h, tree.projectId, 'media-app')).token;
});
afterAll(async () => {
  await h?.close();
  await media?.close();
});

async function submit(kind: string, request: Record<string, unknown>, estimatedSeconds: string | null = null) {
  const res = await h.gql(SUBMIT, { input: { projectId: tree.projectId, kind, request, ...(estimatedSeconds ? { estimatedSeconds } : {}) } }, token);
  expect(res.errors).toBeUndefined();
  return res.data.submitJob;
}

async function settled(id: string) {
  return waitFor(async () => {
    const job = (await h.gql(JOB_QUERY, { id })).data.job;
    return ['SUCCEEDED', 'FAILED'].includes(job.status) ? job : null;
  });
}

const TABLES = ['jobs', 'job_items', 'ledger_entries', 'usage_rollups', 'audit_events'];
async function counts(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of TABLES) {
    const [row] = await queryRows<{ n: number }>(h.services.db, sql.raw(`select count(*)::int as n from ${t}`));
    out[t] = Number(row!.n);
  }
  return out;
}

// measured µs × rate (µcs/s) / 1e6, rounded up; × outputs × 110 / 100, rounded up: the price book's own arithmetic.
const hold = (micros: bigint, rateMicroCs: bigint, outputs: bigint) => {
  const perOutput = (micros * rateMicroCs + 999_999n) / 1_000_000n;
  return (perOutput * outputs * 110n + 99n) / 100n;
};

describe('holds from measured media', () => {
  it('a media server that never answers is cut off at the time limit: a ValidationError, not a hung admission', async () => {
    const silentConnections: net.Socket[] = [];
    const silent = net.createServer((socket) => silentConnections.push(socket)); // accepts connections, never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    try {
      const started = Date.now();
      const error = await prepareJob('AVATAR_VIDEO', { type: 'avatar', avatar_id: 'a', audio_url: `http://127.0.0.1:${port}/a.wav` }, { timeoutMs: 200, maxBytes: MAX_BYTES, allowPrivate: true }).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).message).toMatch(/within 200 ms/);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await new Promise<void>((resolve) => {
        silent.close(() => resolve());
        for (const c of silentConnections) c.destroy();
      });
    }
  });

  it('audio avatar videos (WAV, MP3): measured length × margin × rate; estimatedSeconds "1" changes nothing', async () => {
    for (const [path, measured] of [
      ['/a.wav', 12_345_000n],
      ['/a.mp3', 10_008_000n], // 417 frames of 24 ms
    ] as const) {
      const request = { type: 'avatar', avatar_id: 'a1', audio_url: media.url(path) };
      const plain = await submit('AVATAR_VIDEO', request);
      const withOne = await submit('AVATAR_VIDEO', request, '1');
      expect(plain.__typename, JSON.stringify(plain)).toBe('SubmitJobPayload');
      expect(withOne.__typename, JSON.stringify(withOne)).toBe('SubmitJobPayload');
      const rows = await queryRows<{ estimated: string }>(
        h.services.db,
        sql`select estimated_micro_cs::text as estimated from jobs where request->>'audio_url' = ${media.url(path)}`,
      );
      expect(rows.map((row) => BigInt(row.estimated))).toEqual([hold(measured, 6_000_000n, 1n), hold(measured, 6_000_000n, 1n)]);
      expect(plain.job.estimatedCreditSeconds).toBe(withOne.job.estimatedCreditSeconds);
      // The simulator renders the same measured audio: the bill is exactly measured × rate, under the hold.
      const done = await settled(plain.job.id);
      expect(done.status).toBe('SUCCEEDED');
      expect(BigInt(Math.round(Number(done.actualSeconds) * 1e6))).toBe(measured);
    }
    await expectCountersEqualLedger(h.services.db);
  });

  it('a 10-language translation of a 42.5 s MP4 (moov at the end of 3 MB): 42.5 × 10 × 3 cs × 110 %, read in ranges', async () => {
    const before = media.bytesSent.get('/v.mp4') ?? 0;
    const request = { video: { type: 'url', url: media.url('/v.mp4') }, output_languages: Array.from({ length: 10 }, (_, i) => `Language ${i}`) };
    const r = await submit('VIDEO_TRANSLATION', request, '1');
    expect(r.__typename, JSON.stringify(r)).toBe('SubmitJobPayload');
    const expected = hold(42_500_000n, 3_000_000n, 10n);
    expect(expected).toBe(1_402_500_000n);
    expect(r.job.estimatedCreditSeconds).toBe('1402.5');
    const [row] = await queryRows<{ estimated: string }>(h.services.db, sql`select estimated_micro_cs::text as estimated from jobs where kind = 'VIDEO_TRANSLATION'`);
    expect(BigInt(row!.estimated)).toBe(expected);
    // The gateway read a small part of the file (the simulator reads it too when it renders).
    const read = (media.bytesSent.get('/v.mp4') ?? 0) - before;
    expect(read).toBeLessThan(LARGE_MP4_BYTES / 4);
    const done = await settled(r.job.id);
    expect(done.status).toBe('SUCCEEDED');
    expect(done.actualCreditSeconds).toBe('1275'); // 10 × 42.5 s × 3 cs/s, under the 1,402.5 held
    await expectCountersEqualLedger(h.services.db);
  });

  it('unreachable, unparseable, oversized or too-long media: a ValidationError naming the field, nothing written', async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['AVATAR_VIDEO', { type: 'avatar', avatar_id: 'a1', audio_url: media.url('/missing.wav') }, 'request.audio_url'],
      ['AVATAR_VIDEO', { type: 'avatar', avatar_id: 'a1', audio_url: 'http://127.0.0.1:9/closed.wav' }, 'request.audio_url'],
      ['AVATAR_VIDEO', { type: 'avatar', avatar_id: 'a1', audio_url: media.url('/text.txt') }, 'request.audio_url'],
      ['AVATAR_VIDEO', { type: 'avatar', avatar_id: 'a1', audio_url: media.url('/norange/big.wav') }, 'request.audio_url'],
      ['AVATAR_VIDEO', { type: 'avatar', avatar_id: 'a1', audio_url: media.url('/long.wav') }, 'request.audio_url'],
      ['VIDEO_TRANSLATION', { video: { type: 'url', url: media.url('/missing.mp4') }, output_languages: ['French'] }, 'request.video.url'],
      ['VIDEO_TRANSLATION', { video: { type: 'url', url: media.url('/norange/v.mp4') }, output_languages: ['French'] }, 'request.video.url'],
      [
        'AVATAR_VIDEO',
        { scenes: [{ type: 'video', source: { type: 'url', url: media.url('/text.txt') } }] },
        'request.scenes.0.source.url',
      ],
    ];
    for (const [kind, request, field] of cases) {
      const before = await counts();
      const r = await submit(kind, request, '30');
      expect(r.__typename, `${field}: ${JSON.stringify(r)}`).toBe('ValidationError');
      expect(r.code).toBe('VALIDATION_FAILED');
      expect(r.field).toBe(field);
      expect(await counts()).toEqual(before);
    }
  });

  it('the byte budget is shared by all the media of one request', async () => {
    const limits = { timeoutMs: 3000, maxBytes: 200 * 1024, allowPrivate: true };
    const clip = { type: 'video', source: { type: 'url', url: media.url('/v.mp4') } };
    // One clip fits in the budget; reading six of them would take several times more than one file's worth.
    const one = await prepareJob('AVATAR_VIDEO', { scenes: [clip] }, limits);
    expect(one.measured.get('scenes.0.source.url')).toBe(42_500_000n);
    const error = await prepareJob('AVATAR_VIDEO', { scenes: Array.from({ length: 6 }, () => clip) }, limits).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).message).toMatch(/oversized/);
  });

  it('private, loopback and link-local addresses are refused unless allowed, after DNS resolution', async () => {
    const strict = { timeoutMs: 2000, maxBytes: MAX_BYTES, allowPrivate: false };
    for (const url of [media.url('/a.wav'), media.url('/a.wav').replace('127.0.0.1', 'localhost'), 'http://169.254.169.254/latest', 'http://[::1]:9/a.wav', 'http://10.0.0.1/a.wav']) {
      const error = await prepareJob('AVATAR_VIDEO', { type: 'avatar', avatar_id: 'a', audio_url: url }, strict).catch((e: unknown) => e);
      expect(error, url).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).field).toBe('request.audio_url');
      expect((error as ValidationError).message, url).toMatch(/private, loopback or link-local/);
    }
    for (const address of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1']) {
      expect(isPublicAddress(address), address).toBe(false);
    }
    for (const address of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111']) expect(isPublicAddress(address), address).toBe(true);
    // Allowed explicitly (as in tests), a name is resolved and the checked address is the one connected to.
    const allowed = await prepareJob('AVATAR_VIDEO', { type: 'avatar', avatar_id: 'a', audio_url: media.url('/a.wav').replace('127.0.0.1', 'localhost') }, { ...strict, allowPrivate: true });
    expect(allowed.measured.get('audio_url')).toBe(12_345_000n);
    // The default configuration refuses them.
    const { loadConfig } = await import('../src/config.js');
    expect(loadConfig({}).mediaProbe.allowPrivate).toBe(false);
  });
});
