import type { IncomingMessage } from 'node:http';
import { defaultActor, remoteAddr, requestBaseUrl, requestRecord } from '../../lib/emit/request-record';

function req(headers: Record<string, string>, socket: Partial<{ remoteAddress: string; remotePort: number; encrypted: boolean }> = {}): IncomingMessage {
  return { headers, method: 'GET', socket: { remoteAddress: '127.0.0.1', remotePort: 40000, ...socket } } as unknown as IncomingMessage;
}

describe('remoteAddr (Distribution\'s rule)', () => {
  it.each<[string, Record<string, string>, Partial<{ remoteAddress: string; remotePort: number }>, string]>([
    ['the socket, ip:port', {}, {}, '127.0.0.1:40000'],
    ['an IPv4 client of a dual-stack listener, unmapped', {}, { remoteAddress: '::ffff:192.0.2.1' }, '192.0.2.1:40000'],
    ['an IPv6 socket, bracketed', {}, { remoteAddress: '2001:db8::1' }, '[2001:db8::1]:40000'],
    ['the first X-Forwarded-For address', { 'x-forwarded-for': '203.0.113.7, 10.0.0.1' }, {}, '203.0.113.7'],
    ['the first valid X-Forwarded-For address', { 'x-forwarded-for': 'unknown, 2001:db8::7' }, {}, '2001:db8::7'],
    ['X-Real-Ip when X-Forwarded-For has nothing valid', { 'x-forwarded-for': 'bogus', 'x-real-ip': '198.51.100.2' }, {}, '198.51.100.2'],
    ['the socket when X-Real-Ip is not an address', { 'x-real-ip': 'nope' }, {}, '127.0.0.1:40000'],
  ])('%s', (_case, headers, socket, expected) => {
    expect(remoteAddr(req(headers, socket))).toBe(expected);
  });
});

describe('requestBaseUrl', () => {
  it.each<[string, Record<string, string>, boolean, string]>([
    ['Host over plain HTTP', { host: '127.0.0.1:5000' }, false, 'http://127.0.0.1:5000'],
    ['Host over TLS', { host: 'reg.example.com' }, true, 'https://reg.example.com'],
  ])('%s', (_case, headers, encrypted, expected) => {
    expect(requestBaseUrl(req(headers, { encrypted }))).toBe(expected);
  });

  describe('behind a trusted proxy', () => {
    it.each<[string, Record<string, string>, string]>([
      ['X-Forwarded-Proto and -Host, first values', { host: 'internal:5000', 'x-forwarded-proto': 'https, http', 'x-forwarded-host': 'reg.example.com, proxy' }, 'https://reg.example.com'],
      ['Forwarded wins over X-Forwarded-*', { host: 'internal', forwarded: 'for=1.2.3.4;proto=https;host="reg.example.com:8443", for=5.6.7.8', 'x-forwarded-host': 'other' }, 'https://reg.example.com:8443'],
      ['a scheme other than http or https is ignored', { host: 'reg:5000', 'x-forwarded-proto': 'javascript' }, 'http://reg:5000'],
      ['a host that is not a plain host is ignored', { host: 'reg:5000', 'x-forwarded-host': 'evil.example/x?' }, 'http://reg:5000'],
    ])('%s', (_case, headers, expected) => {
      expect(requestBaseUrl(req(headers), true)).toBe(expected);
    });
  });

  it('ignores forwarded headers unless the proxy is trusted', () => {
    const headers = { host: 'reg:5000', forwarded: 'proto=https;host=attacker.example', 'x-forwarded-proto': 'javascript', 'x-forwarded-host': 'attacker.example' };
    expect(requestBaseUrl(req(headers))).toBe('http://reg:5000');
  });
});

describe('requestRecord and defaultActor', () => {
  it('records id, addr, host, method and user agent in wire order', () => {
    const r = requestRecord(req({ host: '127.0.0.1:5000', 'user-agent': 'skopeo/1.9.3' }));
    expect(Object.keys(r)).toEqual(['id', 'addr', 'host', 'method', 'useragent']);
    expect(r).toMatchObject({ addr: '127.0.0.1:40000', host: '127.0.0.1:5000', method: 'GET', useragent: 'skopeo/1.9.3' });
    expect(requestRecord(req({})).id).not.toBe(r.id);
  });

  it('finds the actor on req.user, else anonymous; an unverified Basic header only when asked', () => {
    const basic = { authorization: 'Basic ' + Buffer.from('alice:s3cret:x').toString('base64') };
    expect(defaultActor(Object.assign(req({}), { user: { name: 'bob' } }))).toEqual({ name: 'bob' });
    expect(defaultActor(Object.assign(req({}), { user: 'carol' }))).toEqual({ name: 'carol' });
    expect(defaultActor(req(basic))).toEqual({});
    expect(defaultActor(req(basic), true)).toEqual({ name: 'alice' });
    expect(defaultActor(Object.assign(req(basic), { user: 'bob' }), true)).toEqual({ name: 'bob' });
    expect(defaultActor(req({ authorization: 'Bearer abc' }), true)).toEqual({});
    expect(defaultActor(req({}))).toEqual({});
  });
});
