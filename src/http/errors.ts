// The one catalog of HTTP errors both services answer with (as fastify's lib/errors.js): a code,
// its status and what it means. Every error body is `{"error": code, "message": ...}`, plus
// `fields: [{field, message}]` when the request had fields at fault. The README's API section is
// rendered from this table (`renderErrorCatalog`; a test keeps it current).

export const HTTP_ERRORS = {
  validation_error: {
    status: 400,
    meaning:
      'The request is invalid: `fields` names each field at fault and why (schema, cross-field rules, missing storage objects, a model that cannot serve the task).',
  },
  bad_request: { status: 400, meaning: 'The body is not JSON, or not what the route takes.' },
  unauthorized: { status: 401, meaning: 'No valid bearer token: missing, unknown, revoked, expired, or not for this service (the message says which).' },
  forbidden: {
    status: 403,
    meaning:
      "The caller is known but may not do this: its role (a viewer submitting or cancelling; a user managing another's tokens), or a callback token issued for another job.",
  },
  not_found: { status: 404, meaning: 'No such job, or no such endpoint.' },
  conflict: { status: 409, meaning: 'The job is already finished (cancel of a finished job; a callback after the end).' },
  payload_too_large: { status: 413, meaning: "The body is over the route's limit." },
  unsupported_media_type: {
    status: 415,
    meaning: 'The body is not sent as JSON: `Content-Type: application/json` (curl `--data` alone sends a form).',
  },
  rate_limited: {
    status: 429,
    meaning: 'Too many submissions from this caller in the last minute (KINFER_SUBMITS_PER_MINUTE); retry after `Retry-After` seconds.',
  },
  quota_exceeded: { status: 429, meaning: 'This caller has as many active jobs as allowed (KINFER_MAX_ACTIVE_JOBS_PER_USER); retry when one has finished.' },
  invalid_payload: { status: 422, meaning: "A runner callback's payload does not match the contract (`fields` says where)." },
  internal_error: { status: 500, meaning: 'A bug: the log line with the same trace id says what happened.' },
  executor_unavailable: { status: 503, meaning: 'The job was stored but could not be handed to the tier that runs jobs; it is failed, not left pending.' },
  predictor_unavailable: {
    status: 503,
    meaning: 'The controller forwards /api/v1/predict to the predictor, which did not answer (or none is configured: KINFER_PREDICTOR_URL); retry.',
  },
  predictor_overloaded: {
    status: 503,
    meaning:
      'The predictor replica has as many images in flight as allowed (KINFER_PREDICT_MAX_IN_FLIGHT); nothing was run. Retry after `Retry-After` seconds, here or on another replica.',
  },
  storage_unavailable: { status: 503, meaning: 'Object storage did not answer a submit-time check; nothing was created. Retry.' },
  database_unavailable: {
    status: 503,
    meaning: 'The database is unreachable; nothing was changed. Retry after `Retry-After` seconds: the service reconnects by itself.',
  },
} as const satisfies Record<string, { status: number; meaning: string }>;

export type ErrorCode = keyof typeof HTTP_ERRORS;

export interface FieldProblem {
  field: string;
  message: string;
}

/** An error to answer with: its status comes from the catalog. */
export class HttpError extends Error {
  readonly status: number;
  readonly body: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.name = 'HttpError';
    this.status = HTTP_ERRORS[code].status;
    this.body = { error: code, message, ...extra };
  }
}

/** 400 validation_error naming every field at fault. */
export function validationError(fields: FieldProblem[], what?: string): HttpError {
  const list = fields.map((f) => `${f.field}: ${f.message}`).join('; ');
  return new HttpError('validation_error', what ? `invalid ${what}: ${list}` : list, { fields });
}

/** The catalog as the README's Markdown table. */
export function renderErrorCatalog(): string {
  const rows = Object.entries(HTTP_ERRORS).map(([code, e]) => `| ${e.status} | \`${code}\` | ${e.meaning} |`);
  return ['| status | `error` | meaning |', '|---:|---|---|', ...rows].join('\n');
}
