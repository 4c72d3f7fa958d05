import type { ErrorRequestHandler } from 'express';

/** The error codes of the OCI distribution spec that this registry answers with. */
export type RegistryErrorCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TAG_INVALID'
  // Distribution's, not the spec's: a bad `n` on a listing.
  | 'PAGINATION_NUMBER_INVALID'
  // Distribution's errcode: too many requests (here, failed logins from one client).
  | 'TOOMANYREQUESTS';

/** The HTTP status each code is answered with, as Distribution does. */
const STATUS: Record<RegistryErrorCode, number> = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TAG_INVALID: 400,
  PAGINATION_NUMBER_INVALID: 400,
  TOOMANYREQUESTS: 429,
};

/**
 * A failure a registry client is told about: answered with the code's HTTP status and the
 * spec's body `{"errors":[{"code","message","detail"}]}`. Storage throws these too, so a
 * route only has to let them through.
 */
export class RegistryError extends Error {
  override readonly name = 'RegistryError';
  readonly status: number;

  constructor(
    readonly code: RegistryErrorCode,
    message: string,
    readonly detail?: unknown,
    status?: number,
  ) {
    super(message);
    this.status = status ?? STATUS[code];
  }

  /** The body the spec prescribes. */
  toJSON(): { errors: Array<{ code: string; message: string; detail?: unknown }> } {
    return { errors: [{ code: this.code, message: this.message, ...(this.detail !== undefined ? { detail: this.detail } : {}) }] };
  }
}

/** Whether `err` is a RegistryError with one of the given codes. */
export function isRegistryError(err: unknown, ...codes: RegistryErrorCode[]): err is RegistryError {
  return err instanceof RegistryError && (codes.length === 0 || codes.includes(err.code));
}

/** What a client is told of an unexpected failure: nothing of it (messages of the filesystem name paths). */
export const UNKNOWN_ERROR_BODY = { errors: [{ code: 'UNKNOWN', message: 'unknown error' }] } as const;

/**
 * An Express error handler answering in Distribution's error shape: a RegistryError with
 * its code and status; a client error raised by Express or a body parser (a 4xx `status`
 * with `expose`, such as malformed JSON) with its status, code UNKNOWN and its message;
 * anything else 500 UNKNOWN, which goes to `log` (stack and all) and never to the client.
 * A request whose body was not read to its end is answered with `Connection: close`, so
 * the rest of the body is never read.
 */
export function errorResponder(log: (err: Error) => void, headers: Record<string, string> = {}): ErrorRequestHandler {
  return (err: unknown, req, res, next) => {
    if (err === undefined) return next();
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (!req.complete) res.set('Connection', 'close');
    res.set(headers);
    if (err instanceof RegistryError) {
      res.status(err.status).json(err.toJSON());
      return;
    }
    const client = err as { status?: unknown; expose?: unknown; message?: unknown };
    if (typeof client.status === 'number' && client.status >= 400 && client.status < 500 && client.expose === true) {
      res.status(client.status).json({ errors: [{ code: 'UNKNOWN', message: String(client.message) }] });
      return;
    }
    log(err instanceof Error ? err : new Error(String(err)));
    res.status(500).json(UNKNOWN_ERROR_BODY);
  };
}
