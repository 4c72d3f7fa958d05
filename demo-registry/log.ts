// The demo's log, in Distribution's shapes (logrus): `log.level`, `log.formatter`
// (text, json, logstash), `log.fields` on every line, and one access line per response.
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATTERS = ['text', 'json', 'logstash'] as const;
export type LogFormatter = (typeof LOG_FORMATTERS)[number];
export type LogValue = string | number | boolean;
export type LogFields = Record<string, LogValue | undefined>;

/** `log:` (and the deprecated `loglevel:`), normalized. */
export interface LogConfig {
  /** `log.level`, else `loglevel`. @default 'info' */
  level: LogLevel;
  /** `log.formatter`. @default 'text' */
  formatter: LogFormatter;
  /** `log.fields`: added to every line. @default {} */
  fields: Record<string, LogValue>;
  /** Not `log.accesslog.disabled`: one line per response. @default true */
  accessLog: boolean;
  /**
   * Whether the configuration has a `log:` section or `loglevel:`. Without one, the demo
   * prints its own short lines (`demo-registry: listening on …`) and no access lines, as
   * it always has; with one, Distribution's formats.
   */
  distribution: boolean;
}

export const DEFAULT_LOG_CONFIG: LogConfig = { level: 'info', formatter: 'text', fields: {}, accessLog: true, distribution: false };

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };
/** As logrus names its levels. */
const LOGRUS_NAME: Record<LogLevel, string> = { error: 'error', warn: 'warning', info: 'info', debug: 'debug' };

/** Whether logrus' text formatter writes the value as it is, without quotes. */
function bare(text: string): boolean {
  return /^[A-Za-z0-9\-._/@^+]*$/.test(text);
}

function textValue(value: LogValue): string {
  const text = String(value);
  return bare(text) ? text : JSON.stringify(text);
}

/** Keys in Go's order for a map (sorted by bytes). */
function sortedEntries(record: Record<string, LogValue>): Array<[string, LogValue]> {
  return Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Writes log lines; each goes to `write` whole, without its newline. */
export class Logger {
  private readonly fields: Record<string, LogValue>;

  constructor(
    readonly config: LogConfig,
    private readonly write: (line: string) => void = (line) => process.stderr.write(line + '\n'),
    private readonly now: () => Date = () => new Date(),
  ) {
    this.fields = { ...config.fields };
  }

  /** Whether a line of `level` is written. */
  enabled(level: LogLevel): boolean {
    return RANK[level] <= RANK[this.config.level];
  }

  log(level: LogLevel, msg: string, fields: LogFields = {}): void {
    if (!this.enabled(level)) return;
    this.write(this.format(level, msg, fields));
  }

  error(msg: string, fields?: LogFields): void {
    this.log('error', msg, fields);
  }

  warn(msg: string, fields?: LogFields): void {
    this.log('warn', msg, fields);
  }

  info(msg: string, fields?: LogFields): void {
    this.log('info', msg, fields);
  }

  debug(msg: string, fields?: LogFields): void {
    this.log('debug', msg, fields);
  }

  /** One line, in the configured formatter. */
  format(level: LogLevel, msg: string, extra: LogFields = {}): string {
    const data: Record<string, LogValue> = { ...this.fields };
    for (const [k, v] of Object.entries(extra)) if (v !== undefined) data[k] = v;
    const time = this.now().toISOString();
    if (!this.config.distribution) {
      const rest = sortedEntries(data).map(([k, v]) => ` ${k}=${textValue(v)}`).join('');
      return `demo-registry: ${level === 'info' || level === 'debug' ? '' : `${LOGRUS_NAME[level]}: `}${msg}${rest}`;
    }
    switch (this.config.formatter) {
      case 'text': {
        // logrus: time, level and msg first, then the fields sorted by name.
        const rest = sortedEntries(data).map(([k, v]) => ` ${k}=${textValue(v)}`).join('');
        return `time=${textValue(time)} level=${LOGRUS_NAME[level]} msg=${textValue(msg)}${rest}`;
      }
      case 'json':
        // logrus' JSONFormatter: one object, fields beside time, level and msg, keys sorted as Go sorts a map.
        return JSON.stringify(Object.fromEntries(sortedEntries({ ...renameClashes(data, ['time', 'level', 'msg']), time, level: LOGRUS_NAME[level], msg })));
      case 'logstash':
        return JSON.stringify(
          Object.fromEntries(
            sortedEntries({ ...renameClashes(data, ['@timestamp', '@version', 'level', 'message']), '@timestamp': time, '@version': '1', level: LOGRUS_NAME[level], message: msg }),
          ),
        );
    }
  }
}

/** logrus keeps a field named like one of its own keys as `fields.<name>`. */
function renameClashes(data: Record<string, LogValue>, reserved: string[]): Record<string, LogValue> {
  const out: Record<string, LogValue> = {};
  for (const [k, v] of Object.entries(data)) out[reserved.includes(k) ? `fields.${k}` : k] = v;
  return out;
}

/** A duration as Go's time.Duration prints it: `850ns`, `666.208µs`, `1.066643ms`, `1.5s`, `2m3s`, `1h0m0s`. */
export function goDuration(nanoseconds: number): string {
  const ns = Math.max(0, Math.round(nanoseconds));
  if (ns === 0) return '0s';
  const trim = (n: number, digits: number) => n.toFixed(digits).replace(/\.?0+$/, '');
  if (ns < 1e3) return `${ns}ns`;
  if (ns < 1e6) return `${trim(ns / 1e3, 3)}µs`;
  if (ns < 1e9) return `${trim(ns / 1e6, 6)}ms`;
  const hours = Math.floor(ns / 3.6e12);
  const minutes = Math.floor((ns % 3.6e12) / 6e10);
  const seconds = trim((ns % 6e10) / 1e9, 9);
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}

/**
 * Express middleware writing one line per response, as Distribution's "response
 * completed" lines: method, URI, status, duration (Go's notation), bytes written, remote
 * address, user agent, content type and a request id. Error statuses are logged at
 * `error` ("response completed with error"), as Distribution does.
 */
export function accessLog(logger: Logger): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    let written = 0;
    const write = res.write.bind(res) as (...args: unknown[]) => boolean;
    const end = res.end.bind(res) as (...args: unknown[]) => Response;
    const count = (chunk: unknown, encoding?: unknown) => {
      if (typeof chunk === 'string') written += Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
      else if (chunk instanceof Uint8Array) written += chunk.length;
    };
    (res as { write: unknown }).write = (chunk: unknown, ...rest: unknown[]) => {
      count(chunk, rest[0]);
      return write(chunk, ...rest);
    };
    (res as { end: unknown }).end = (chunk?: unknown, ...rest: unknown[]) => {
      if (typeof chunk !== 'function') count(chunk, rest[0]);
      return end(chunk, ...rest);
    };
    const id = randomUUID();
    const done = () => {
      res.off('finish', done);
      res.off('close', done);
      const failed = res.statusCode >= 400;
      logger.log(failed ? 'error' : 'info', failed ? 'response completed with error' : 'response completed', {
        'http.request.host': req.headers.host,
        'http.request.id': id,
        'http.request.method': req.method,
        'http.request.remoteaddr': `${req.socket.remoteAddress ?? ''}:${req.socket.remotePort ?? ''}`,
        'http.request.uri': req.originalUrl,
        'http.request.useragent': req.headers['user-agent'],
        'http.response.contenttype': res.getHeader('content-type')?.toString(),
        'http.response.duration': goDuration(Number(process.hrtime.bigint() - started)),
        'http.response.status': res.statusCode,
        'http.response.written': written,
      });
    };
    res.on('finish', done);
    res.on('close', done);
    next();
  };
}
