// A small client of the REST API, for the CLI and the demo.
import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { request } from 'undici';

export class ApiError extends Error {
  readonly status: number;
  readonly body: unknown;
  constructor(status: number, body: unknown) {
    const message = typeof body === 'object' && body && 'message' in body ? String((body as { message: unknown }).message) : JSON.stringify(body);
    // Each field at fault on its own line, as the API names them.
    const fields = (body as { fields?: Array<{ field: string; message: string }> } | undefined)?.fields ?? [];
    super(
      `HTTP ${status}: ${message}${fields
        .map(
          (f) => `
  ${f.field}: ${f.message}`,
        )
        .join('')}`,
    );
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

export class ApiClient {
  readonly #base: string;
  readonly #auth: Record<string, string>;

  constructor(baseUrl: string, token?: string) {
    this.#base = baseUrl.replace(/\/+$/, '');
    this.#auth = token ? { authorization: `Bearer ${token}` } : {};
  }

  async call<T = Record<string, unknown>>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const res = await request(`${this.#base}${path}`, {
      method,
      headers: body === undefined ? this.#auth : { ...this.#auth, 'content-type': 'application/json' },
      body: body === undefined ? null : JSON.stringify(body),
    });
    const text = await res.body.text();
    if (res.statusCode >= 400) throw ApiError.fromText(res.statusCode, text);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Streams a response body to a file (or standard output); returns the bytes written. */
  async download(path: string, file?: string): Promise<number> {
    const res = await request(`${this.#base}${path}`, { headers: this.#auth });
    if (res.statusCode >= 400) throw ApiError.fromText(res.statusCode, await res.body.text());
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
