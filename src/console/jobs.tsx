// Recent and live jobs. The projects' `jobsUpdated` subscriptions (Server-Sent Events) bring each change as it
// happens; polling is the fallback: while a job is still running and a project of it has no open stream (not yet
// opened, dropped and waiting to be opened again, refused, or beyond MAX_STREAMS), the list is re-read every
// LIVE_POLL_MS; otherwise every IDLE_POLL_MS (which also catches a project's first job).
import { useEffect, useMemo, useRef, useState } from 'react';
import type { ResultOf } from './graphql.js';
import { JobOutputsQuery, JobsQuery, JobsUpdatedSubscription, type JobFields } from './queries.js';
import { usePaged, useQuery, useSession } from './api.js';
import { describeError } from './graphql.js';
import { follow } from './live.js';
import { cs, dateTime } from './format.js';

export type JobView = ResultOf<typeof JobFields>;

export const LIVE_POLL_MS = 1_000;
export const IDLE_POLL_MS = 15_000;
/** Projects followed by subscription at most (the API caps a caller's open streams, GRAPHQL_MAX_SUBSCRIPTIONS_PER_CALLER, 20 by default). */
export const MAX_STREAMS = 8;
const RUNNING = new Set(['QUEUED', 'RESERVED', 'SUBMITTED', 'PROCESSING', 'SUBMIT_UNKNOWN']);
export const isRunning = (job: JobView) => RUNNING.has(job.status);

const STATUS: Record<string, string> = {
  RESERVED: 'queued',
  SUBMITTED: 'running',
  PROCESSING: 'running',
  SUBMIT_UNKNOWN: 'checking',
  SUCCEEDED: 'done',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
  EXPIRED: 'expired',
  REJECTED: 'refused',
};

type Outputs = { state: 'idle' } | { state: 'loading' } | { state: 'error'; message: string } | { state: 'done'; urls: string[]; note: string | null };

/**
 * The video of a finished job: its outputs are read from HeyGen (through the gateway) only when asked, one job at a
 * time, so a page of jobs never fans out into a HeyGen read per row. HeyGen's links expire: they are not kept.
 */
function VideoCell({ job }: { job: JobView }) {
  const session = useSession();
  const [outputs, setOutputs] = useState<Outputs>({ state: 'idle' });
  if (job.status !== 'SUCCEEDED') return <>—</>;
  const load = async () => {
    setOutputs({ state: 'loading' });
    const result = await session.client.query(JobOutputsQuery, { id: job.id }).toPromise();
    const list = result.data?.job?.outputs;
    if (result.error || !list) return setOutputs({ state: 'error', message: describeError(result.error) ?? 'Not found, or not visible to you.' });
    const urls = list.map((o) => o.videoUrl).filter((u): u is string => typeof u === 'string' && /^https?:\/\//.test(u));
    const note = urls.length === 0 ? (list.find((o) => o.failureMessage)?.failureMessage ?? 'HeyGen has no video for it (any more).') : null;
    setOutputs({ state: 'done', urls, note });
  };
  if (outputs.state === 'done') {
    return (
      <span data-testid="job-video">
        {outputs.urls.map((url, i) => (
          <a key={url} href={url} target="_blank" rel="noopener noreferrer">
            {outputs.urls.length > 1 ? `Video ${i + 1}` : 'Video'}
          </a>
        ))}
        {outputs.note && <span className="muted small">{outputs.note}</span>}
      </span>
    );
  }
  return (
    <>
      <button type="button" className="link" onClick={() => void load()} disabled={outputs.state === 'loading'} aria-label={`Video link of the job created ${job.createdAt}`}>
        {outputs.state === 'loading' ? 'Asking HeyGen…' : 'Get link'}
      </button>
      {outputs.state === 'error' && (
        <div className="error small" role="alert">
          {outputs.message}
        </div>
      )}
    </>
  );
}

/** How current the list is, in words. */
export function LiveNote({ anyRunning, streamsDown }: { anyRunning: boolean; streamsDown: number }) {
  const text =
    streamsDown > 0
      ? `Live updates: ${streamsDown === 1 ? 'a stream is' : `${streamsDown} streams are`} (re)connecting; ${anyRunning ? 'the list is re-read every second meanwhile' : 'the list is re-read every 15 seconds meanwhile'}.`
      : 'Live: jobs change on screen as they start, finish or fail.';
  return (
    <p className="muted small" data-testid="live-note" data-streams-down={streamsDown}>
      {text}
    </p>
  );
}

export function JobsTable({ jobs, timeZone }: { jobs: JobView[]; timeZone: string }) {
  if (jobs.length === 0) return <p className="empty">No jobs yet in this part of the organisation.</p>;
  return (
    <div className="table-wrap">
      <table data-testid="jobs">
        <caption className="sr-only">Recent jobs, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Created ({timeZone})</th>
            <th scope="col">Project</th>
            <th scope="col">Product</th>
            <th scope="col">Submitted by</th>
            <th scope="col">Status</th>
            <th scope="col" className="num">
              Cost
            </th>
            <th scope="col" className="num">
              Overrun
            </th>
            <th scope="col">Video</th>
          </tr>
        </thead>
        <tbody>
          {jobs.map((job) => (
            <tr key={job.id} data-testid="job" data-job-id={job.id}>
              <td>{dateTime(job.createdAt, timeZone)}</td>
              <td>{job.project.name}</td>
              <td>{job.product}</td>
              <td data-testid="job-submitter">{job.createdBy}</td>
              <td>
                <span className={`status s-${STATUS[job.status] ?? 'other'}`} data-testid="job-status" data-status={job.status}>
                  {STATUS[job.status] ?? job.status.toLowerCase()}
                </span>
                {job.failureMessage && <div className="muted small">{job.failureMessage}</div>}
              </td>
              <td className="num">{job.actualCreditSeconds ? cs(job.actualCreditSeconds) : `≤ ${cs(job.reservedCreditSeconds)} held`}</td>
              <td className="num">{job.overrunCreditSeconds && job.overrunCreditSeconds !== '0' ? cs(job.overrunCreditSeconds) : '—'}</td>
              <td>
                <VideoCell job={job} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/**
 * The account's jobs the caller may see, newest first: every page back to a week before the period (so that a unit's
 * page finds its own jobs among the account's; at most MAX_JOB_PAGES pages), merged with the first page re-read
 * every second while a job runs.
 */
export function useJobs(accountId: string, period: string) {
  const since = new Date(Date.UTC(Number(period.slice(0, 4)), Number(period.slice(5, 7)) - 1, 1) - 7 * 86_400_000).toISOString();
  const all = usePaged(JobsQuery, { accountId }, (d) => d.jobs, MAX_JOB_PAGES, (nodes) => (nodes.at(-1)?.createdAt ?? since) < since);
  const [pollMs, setPollMs] = useState(IDLE_POLL_MS);
  const first = useQuery(JobsQuery, { accountId, after: null }, pollMs);
  const pushed = usePushedJobs(first.data?.jobs.edges.map((e) => e.node) ?? [], first.refetch);
  const jobs = useMemo(() => {
    const latest = first.data?.jobs.edges.map((e) => e.node) ?? [];
    const byId = new Map([...latest, ...all.nodes.filter((j) => !latest.some((l) => l.id === j.id))].map((j) => [j.id, j]));
    // A pushed version replaces the polled one when it is newer (a later status) or the job is new to the list.
    const fresh: JobView[] = [];
    for (const job of pushed.jobs.values()) {
      const known = byId.get(job.id);
      if (!known) fresh.push(job);
      else if (isRunning(known) && job.status !== known.status) byId.set(job.id, job);
    }
    fresh.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    return [...fresh, ...byId.values()];
  }, [first.data, all.nodes, pushed.jobs]);
  // Only the first page is re-read often, so only its jobs decide the pace: fast while one runs in a project without
  // an open stream; when the last of them finishes, the older pages are read again once (their totals may have moved).
  const running = jobs.filter(isRunning);
  const anyRunning = running.length > 0;
  const unstreamed = running.some((j) => !pushed.live.has(j.project.id));
  const wasRunning = useRef(false);
  const refetchAll = all.refetch;
  useEffect(() => {
    setPollMs(unstreamed ? LIVE_POLL_MS : IDLE_POLL_MS);
    if (wasRunning.current && !anyRunning) refetchAll();
    wasRunning.current = anyRunning;
  }, [anyRunning, unstreamed, refetchAll]);
  // Streams followed but not open (connecting, or dropped and waiting to be opened again).
  const streamsDown = pushed.followed.filter((p) => !pushed.live.has(p)).length;
  return { jobs, anyRunning, streamsDown, error: first.error ?? all.error, loading: !first.data, truncated: all.truncated };
}
export const MAX_JOB_PAGES = 20;

/**
 * `jobsUpdated` for the projects of the latest jobs (at most MAX_STREAMS): each event is the job as it stands. A
 * project is in `live` while its stream is open; one that drops is left out (so polling covers it) and opened again
 * after a growing delay (live.ts); `reopened` is called when it is back, as events may have been missed meanwhile.
 */
function usePushedJobs(latest: JobView[], reopened: () => void) {
  const session = useSession();
  const projects = [...new Set(latest.map((j) => j.project.id))].sort().slice(0, MAX_STREAMS);
  const key = projects.join(',');
  const [state, setState] = useState<{ jobs: Map<string, JobView>; live: Set<string> }>({ jobs: new Map(), live: new Set() });
  const onReopen = useRef(reopened);
  onReopen.current = reopened;
  useEffect(() => {
    if (!key) return;
    const setLive = (projectId: string, open: boolean) =>
      setState((s) => {
        if (s.live.has(projectId) === open) return s;
        const live = new Set(s.live);
        if (open) live.add(projectId);
        else live.delete(projectId);
        return { jobs: s.jobs, live };
      });
    const stops = key.split(',').map((projectId) =>
      follow(session.live, JobsUpdatedSubscription, { projectId }, {
        data: ({ jobsUpdated: job }) => setState((s) => ({ jobs: new Map(s.jobs).set(job.id, job), live: s.live.has(projectId) ? s.live : new Set(s.live).add(projectId) })),
        open: (again) => {
          setLive(projectId, true);
          if (again) onReopen.current();
        },
        closed: () => setLive(projectId, false),
      }),
    );
    return () => {
      for (const stop of stops) stop();
      setState((s) => ({ jobs: s.jobs, live: new Set() }));
    };
  }, [session, key]);
  return { ...state, followed: projects };
}
