// A small client of the REST API, for the CLI and the demo.
import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Dispatcher, request } from 'undici';
import { CliError } from './cli-error.ts';

export class ApiError extends Error {
  readonly status: number;
  readonly body: unknown;
  constructor(status: number, body: unknown) {
    let message = typeof body === 'object' && body && 'message' in body ? String((body as { message: unknown }).message) : JSON.stringify(body);
    // Each field at fault on its own line, as the API names them; its message lists them too
    // (`invalid test run: a: ...; b: ...`, src/http/errors.ts), which is then said once.
    const fields = (body as { fields?: Array<{ field: string; message: string }> } | undefined)?.fields ?? [];
    const listed = fields.map((f) => `${f.field}: ${f.message}`);
    const code = (body as { error?: unknown } | undefined)?.error;
    if (fields.length > 0 && message.endsWith(listed.join('; '))) message = message.slice(0, -listed.join('; ').length).replace(/[:\s]+$/, '') || String(code);
    // Every service's answer to a path it does not serve: most likely a URL that is not the API's.
    if (status === 404 && message.startsWith('no such endpoint')) message += `: is KINFER_API_URL the API's URL (such as ${API_URL_EXAMPLE})?`;
    super(`HTTP ${status}: ${message}${listed.map((l) => `\n  ${l}`).join('')}`);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }

  /** From an error answer's text: the API's JSON, or a proxy's page (a 502's HTML) as its message. */
  static fromText(status: number, text: string): ApiError {
    try {
      return new ApiError(status, text ? JSON.parse(text) : undefined);
    } catch {
      return new ApiError(status, { message: text.trim().slice(0, 200) });
    }
  }
}

/**
 * The token the CLI uses: KINFER_TOKEN, else the admin token `kinfer serve` made on this machine
 * ($KINFER_HOME/admin-token), else none (the API answers 401 and says so).
 */
export function localToken(env: NodeJS.ProcessEnv, home: string): string | undefined {
  if (env.KINFER_TOKEN) return env.KINFER_TOKEN;
  try {
    return readFileSync(join(home, 'admin-token'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Where the API is when KINFER_API_URL or --api does not say. */
export const API_URL_EXAMPLE = 'http://127.0.0.1:8080/api/v1';

/**
 * The REST API's base URL from KINFER_API_URL or --api. A server's root (`http://host:8080`, as
 * the dashboard's address is copied) means the API under it, `/api/v1`; any other path is taken as
 * the API's own (behind a proxy that moves it).
 */
export function apiBaseUrl(raw: string): string {
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    // said below
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:'))
    throw new CliError(`the API's URL is not an http(s) URL: "${raw}" (KINFER_API_URL or --api, such as ${API_URL_EXAMPLE})`);
  const base = `${url.origin}${url.pathname}`.replace(/\/+$/, '');
  return url.pathname === '/' ? `${base}/api/v1` : base;
}

export class ApiClient {
  /** The API's base URL, without a trailing slash. */
  readonly base: string;
  readonly #auth: Record<string, string>;

  constructor(baseUrl: string, token?: string) {
    this.base = apiBaseUrl(baseUrl);
    this.#auth = token ? { authorization: `Bearer ${token}` } : {};
  }

  async call<T = Record<string, unknown>>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const res = await this.#send(path, {
      method,
      headers: body === undefined ? this.#auth : { ...this.#auth, 'content-type': 'application/json' },
      body: body === undefined ? null : JSON.stringify(body),
    });
    const text = await res.body.text();
    // The API answers JSON; a page (a dashboard's, a proxy's) means the URL is not the API's.
    const type = String(res.headers['content-type'] ?? '');
    if (text && !/^application\/json\b/.test(type))
      throw new Error(
        `${this.base}${path.split('?', 1)[0]} answered ${type || 'without a content type'}, not the kinfer API's JSON: is KINFER_API_URL the API's URL (such as ${API_URL_EXAMPLE})?`,
      );
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** A response of the API (2xx: an error answer is thrown as ApiError), its body to read. */
  async open(path: string, headers: Record<string, string> = {}): Promise<Dispatcher.ResponseData> {
    return this.#send(path, { method: 'GET', headers: { ...this.#auth, ...headers } });
  }

  async #send(path: string, options: Omit<Dispatcher.RequestOptions, 'origin' | 'path'>): Promise<Dispatcher.ResponseData> {
    let res: Dispatcher.ResponseData;
    try {
      res = await request(`${this.base}${path}`, options);
    } catch (err) {
      // kubectl's "The connection to the server ... was refused - did you specify the right host or port?"
      const code = (err as { code?: string }).code;
      const hint = code === 'ECONNREFUSED' || code === 'ENOTFOUND' ? ': is it running there? (`kinfer serve` starts one; KINFER_API_URL says where)' : '';
      throw new Error(`cannot reach the kinfer API at ${this.base} (${(err as Error).message})${hint}`, { cause: err });
    }
    if (res.statusCode >= 400) {
      const err = ApiError.fromText(res.statusCode, await res.body.text());
      if (res.statusCode === 401 && !this.#auth.authorization)
        err.message += '; the CLI had no token to send: set KINFER_TOKEN, or KINFER_HOME to the folder `kinfer serve` keeps its admin-token in';
      throw err;
    }
    return res;
  }

  /** Streams a response body to a file (or standard output); returns the bytes written. */
  async download(path: string, file?: string): Promise<number> {
    const res = await this.open(path);
    let bytes = 0;
    res.body.on('data', (chunk: Buffer) => (bytes += chunk.length));
    await pipeline(
      res.body,
      file
        ? createWriteStream(file)
        : new Writable({ write: (chunk, _enc, done) => (process.stdout.write(chunk) ? done() : process.stdout.once('drain', done)) }),
    );
    return bytes;
  }
}
