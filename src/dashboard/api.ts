// The dashboard's one way to the server: the same origin's /api/v1, with the caller's
// credentials. A browser (or a proxy in front of it) that sends its own Authorization header
// needs nothing here; otherwise the token typed on the sign-in form is kept for the tab
// (sessionStorage) and sent as a bearer token.
import { takeServerSentEvents } from '../contract/server-sent-events.ts';

const TOKEN_KEY = 'kinfer-token';

export const token = {
  get: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  set: (value: string) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  readonly status: number;
  readonly fields: Array<{ field: string; message: string }>;
  constructor(status: number, body: { message?: string; fields?: Array<{ field: string; message: string }> } | undefined) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.fields = body?.fields ?? [];
  }
}

/**
 * Listeners told when the server answers 401 to the credentials in use (the app then shows the
 * sign-in form).
 */
export const onUnauthorized = new Set<() => void>();

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const t = token.get();
  return { ...(t ? { authorization: `Bearer ${t}` } : {}), ...extra };
}

export async function api<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const isForm = body instanceof FormData;
  const sent = token.get();
  const res = await fetch(`/api/v1${path}`, {
    method,
    headers: headers(body === undefined || isForm ? {} : { 'content-type': 'application/json' }),
    body: body === undefined ? undefined : isForm ? body : JSON.stringify(body),
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : undefined;
  // A 401 to a request sent before a sign-in finished says nothing about the token taken since.
  if (res.status === 401 && token.get() === sent) onUnauthorized.forEach((fn) => fn());
  if (!res.ok) throw new ApiError(res.status, json);
  return json as T;
}

/** An artifact's URL cannot carry a header: it is fetched and shown as an object URL. */
export async function blobUrl(path: string): Promise<string> {
  const res = await fetch(`/api/v1${path}`, { headers: headers() });
  if (!res.ok) throw new ApiError(res.status, undefined);
  return URL.createObjectURL(await res.blob());
}

/**
 * A job's server-sent events, read with fetch (EventSource cannot send an Authorization header).
 * Calls `on` per event until `done` or until the returned function is called. A stream that ends
 * or breaks before `done` (the controller restarting, the database away for a moment) is opened
 * again after a pause, as EventSource would; it starts with the job's status. A 4xx (the job
 * deleted, the session ended) stops it.
 */
export function events(segment: string, id: string, on: (event: string, data: any) => void): () => void {
  const controller = new AbortController();
  const { signal } = controller;
  void (async () => {
    let pause = 1_000;
    while (!signal.aborted) {
      try {
        const res = await fetch(`/api/v1/${segment}/${id}/events`, { headers: headers({ accept: 'text/event-stream' }), signal });
        if (res.status >= 400 && res.status < 500) return;
        if (res.ok && res.body) {
          const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
          let buffer = '';
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            const taken = takeServerSentEvents(buffer + value);
            buffer = taken.rest;
            for (const e of taken.events) {
              on(e.event, e.data);
              if (e.event === 'done') return;
              pause = 1_000;
            }
          }
        }
      } catch {
        // Aborted (the page was left: the loop ends) or the server went away: try again.
      }
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 2, 10_000);
    }
  })();
  return () => controller.abort();
}
