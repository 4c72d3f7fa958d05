import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { v4 as uuidv4 } from 'uuid';
import type { ActorRecord, RequestRecord } from '../model/event';

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function hostPort(ip: string, port: number | undefined): string {
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return port === undefined ? host : `${host}:${port}`;
}

/**
 * The client's address by Distribution's rule: the first valid address in
 * `X-Forwarded-For`, else `X-Real-Ip`, else the socket's `ip:port`.
 */
export function remoteAddr(req: IncomingMessage): string {
  const forwarded = header(req, 'x-forwarded-for');
  if (forwarded) {
    for (const part of forwarded.split(',')) {
      const ip = part.trim();
      if (isIP(ip)) return ip;
    }
  }
  const real = header(req, 'x-real-ip')?.trim();
  if (real && isIP(real)) return real;
  let ip = req.socket.remoteAddress ?? '';
  // A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d; Go reports a.b.c.d.
  if (ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4) ip = ip.slice(7);
  return ip ? hostPort(ip, req.socket.remotePort) : '';
}

/** The record of one request that every event it causes carries. `id` is a new uuid. */
export function requestRecord(req: IncomingMessage): RequestRecord {
  const addr = remoteAddr(req);
  const host = header(req, 'host');
  // Key order of the wire format: id, addr, host, method, useragent.
  const record = { id: uuidv4() } as RequestRecord;
  if (addr) record.addr = addr;
  if (host) record.host = host;
  record.method = req.method ?? '';
  record.useragent = header(req, 'user-agent') ?? '';
  return record;
}

/** A host as a URL may carry it: a name or address and an optional port, nothing else. */
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?$/;

/**
 * The scheme and host clients used to reach the registry, for event URLs. Behind a
 * proxy the registry trusts (`trustProxy`): `Forwarded` (proto=, host=), else
 * `X-Forwarded-Proto` / `X-Forwarded-Host`. Otherwise, and for any value that is not an
 * http or https scheme or not a plain host, the connection's scheme and the `Host` header:
 * a client must not be able to put `javascript:` or another site in the events.
 */
export function requestBaseUrl(req: IncomingMessage, trustProxy = false): string {
  let proto: string | undefined;
  let host: string | undefined;
  const forwarded = trustProxy ? header(req, 'forwarded') : undefined;
  if (forwarded) {
    for (const pair of forwarded.split(',')[0].split(';')) {
      const [k, v] = pair.split('=').map((s) => s?.trim());
      if (!k || !v) continue;
      const value = v.replace(/^"(.*)"$/, '$1');
      if (k.toLowerCase() === 'proto') proto = value;
      if (k.toLowerCase() === 'host') host = value;
    }
  }
  if (trustProxy) {
    proto ??= header(req, 'x-forwarded-proto')?.split(',')[0].trim() || undefined;
    host ??= header(req, 'x-forwarded-host')?.split(',')[0].trim() || undefined;
  }
  proto = proto?.toLowerCase();
  if (proto !== 'http' && proto !== 'https') proto = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  if (host === undefined || !HOST.test(host)) host = header(req, 'host');
  if (host === undefined || !HOST.test(host)) host = 'localhost';
  return `${proto}://${host}`;
}

/**
 * The default actor: the user an authentication middleware put on the request
 * (`req.user.name`, `req.user` as a string, or `res.locals.user.name`); `{}` when
 * anonymous. Only with `basicAuthFallback` is the user name of an unverified Basic
 * `Authorization` header taken, for apps whose proxy checked it.
 */
export function defaultActor(
  req: IncomingMessage & { user?: unknown; res?: { locals?: Record<string, unknown> } },
  basicAuthFallback = false,
): ActorRecord {
  const name = nameOf(req.user) ?? nameOf(req.res?.locals?.user) ?? (basicAuthFallback ? basicUser(header(req, 'authorization')) : undefined);
  return name ? { name } : {};
}

function nameOf(u: unknown): string | undefined {
  if (typeof u === 'string' && u) return u;
  if (u && typeof u === 'object' && typeof (u as { name?: unknown }).name === 'string') return (u as { name: string }).name || undefined;
  return undefined;
}

function basicUser(authorization: string | undefined): string | undefined {
  const m = authorization?.match(/^Basic\s+(\S+)$/i);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const user = colon >= 0 ? decoded.slice(0, colon) : '';
  return user || undefined;
}
