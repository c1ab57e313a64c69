/**
 * One error type for everything a client can be told. Each code maps to one HTTP status;
 * the JSON shape is always {"error":{"code","message",...details}}.
 */
export const errorStatus = {
  invalid_json: 400,
  invalid_request: 400,
  invalid_cursor: 400,
  invalid_filter: 400,
  target_not_allowed: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  superseded: 409,
  push_mode: 409,
  cursor_beyond_head: 409,
  cursor_expired: 410,
  payload_too_large: 413,
  unsupported_media_type: 415,
  too_many_requests: 429,
  shutting_down: 503,
  unavailable: 503,
  internal: 500,
} as const;

export type ErrorCode = keyof typeof errorStatus;

export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.details = details;
  }

  get status(): (typeof errorStatus)[ErrorCode] {
    return errorStatus[this.code];
  }

  toJSON(): { error: Record<string, unknown> } {
    return { error: { code: this.code, message: this.message, ...this.details } };
  }
}

/** 400 naming the offending field, e.g. invalid('events[3].type', 'must be ...'). */
export function invalidField(field: string, problem: string): ApiError {
  return new ApiError('invalid_request', `${field}: ${problem}`, { field });
}
