// Queries as React state: loading, data, an error in words, and optional polling (for live jobs).
import { createContext, useCallback, useContext, useEffect, useRef, useState } from 'react';
import type { Client, AnyVariables, TypedDocumentNode } from '@urql/core';
import { describeError, isUnauthenticated } from './graphql.js';
import type { SseClient } from './live.js';

export interface Session {
  client: Client;
  /** Subscriptions (Server-Sent Events). */
  live: SseClient;
  token: string;
  role: 'ADMIN' | 'FINANCE' | 'MANAGER' | 'MEMBER' | 'SERVICE';
  subject: string;
  unit: { id: string; name: string; kind: string } | null;
  accounts: { id: string; name: string; timezone: string; billingModel: string }[];
  signOut(reason?: string): void;
}

export const SessionContext = createContext<Session | null>(null);
export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('no session');
  return session;
}

export interface QueryState<T> {
  data: T | undefined;
  error: string | null;
  loading: boolean;
  refetch(): void;
}

/** Runs a query now and whenever `variables` change; re-runs every `pollMs` while it is set (null: no polling). */
export function useQuery<T, V extends AnyVariables>(query: TypedDocumentNode<T, V>, variables: V, pollMs: number | null = null, skip = false): QueryState<T> {
  const session = useSession();
  const [state, setState] = useState<{ data: T | undefined; error: string | null; loading: boolean }>({ data: undefined, error: null, loading: !skip });
  const key = JSON.stringify(variables);
  const seq = useRef(0);
  const run = useCallback(() => {
    if (skip) return;
    const mine = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    void session.client
      .query(query, JSON.parse(key) as V)
      .toPromise()
      .then((result) => {
        if (mine !== seq.current) return;
        if (isUnauthenticated(result.error)) return session.signOut(describeError(result.error) ?? undefined);
        // A failed re-read keeps what was shown (with the error beside it): a dropped connection does not blank the page.
        setState((s) => ({ data: result.data ?? (result.error ? s.data : undefined), error: describeError(result.error), loading: false }));
      });
  }, [session, query, key, skip]);
  useEffect(() => {
    run();
    return () => {
      seq.current++;
    };
  }, [run]);
  useEffect(() => {
    if (pollMs === null || skip) return;
    const timer = setInterval(run, pollMs);
    return () => clearInterval(timer);
  }, [run, pollMs, skip]);
  return { ...state, refetch: run };
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="muted" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function ErrorNote({ message }: { message: string }) {
  return (
    <p className="error" role="alert">
      {message}
    </p>
  );
}

export interface PagedState<N> {
  nodes: N[];
  error: string | null;
  loading: boolean;
  /** More pages exist than were read (maxPages). */
  truncated: boolean;
  refetch(): void;
}

interface Connection<N> {
  pageInfo: { hasNextPage: boolean; endCursor?: string | null };
  edges: { node: N }[];
}

/**
 * Every page of a connection (up to `maxPages`), read one after the other; `enough(nodes)` may stop early (e.g. jobs
 * older than the period). Re-read on `refetch()` and when the variables change.
 */
export function usePaged<T, V extends AnyVariables & { after?: string | null }, N>(
  query: TypedDocumentNode<T, V>,
  variables: Omit<V, 'after'>,
  connection: (data: T) => Connection<N>,
  maxPages = 20,
  enough: (nodes: N[]) => boolean = () => false,
): PagedState<N> {
  const session = useSession();
  const [state, setState] = useState<{ nodes: N[]; error: string | null; loading: boolean; truncated: boolean }>({ nodes: [], error: null, loading: true, truncated: false });
  const key = JSON.stringify(variables);
  const seq = useRef(0);
  const pick = useRef({ connection, enough });
  pick.current = { connection, enough };
  const run = useCallback(() => {
    const mine = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    void (async () => {
      const nodes: N[] = [];
      let after: string | null = null;
      for (let page = 0; page < maxPages; page++) {
        const result = await session.client.query(query, { ...(JSON.parse(key) as object), after } as V).toPromise();
        if (mine !== seq.current) return;
        if (isUnauthenticated(result.error)) return session.signOut(describeError(result.error) ?? undefined);
        if (result.error || !result.data) return setState({ nodes, error: describeError(result.error) ?? 'No answer.', loading: false, truncated: false });
        const c = pick.current.connection(result.data);
        nodes.push(...c.edges.map((e) => e.node));
        if (!c.pageInfo.hasNextPage || pick.current.enough(nodes)) return setState({ nodes, error: null, loading: false, truncated: false });
        after = c.pageInfo.endCursor ?? null;
      }
      setState({ nodes, error: null, loading: false, truncated: true });
    })();
  }, [session, query, key, maxPages]);
  useEffect(() => {
    run();
    return () => {
      seq.current++;
    };
  }, [run]);
  return { ...state, refetch: run };
}
