import express from 'express';
import request from 'supertest';
import { createFrontApp } from '../../demo-registry/front';
import { DEFAULT_LOG_CONFIG, goDuration, Logger, type LogConfig } from '../../demo-registry/log';

const at = new Date('2026-11-22T16:00:56.783Z');
function capture(config: Partial<LogConfig>): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = new Logger({ ...DEFAULT_LOG_CONFIG, distribution: true, ...config }, (l) => lines.push(l), () => at);
  return { logger, lines };
}

describe('Logger', () => {
  it("writes logrus' text shape: time, level, msg, then the fields sorted, quoted only when needed", () => {
    const { logger, lines } = capture({ fields: { service: 'registry', environment: 'staging' } });
    logger.info('listening on 127.0.0.1:5000', { 'instance.id': 'abc-1', n: 3 });
    logger.warn('plain');
    expect(lines).toEqual([
      'time="2026-11-22T16:00:56.783Z" level=info msg="listening on 127.0.0.1:5000" environment=staging instance.id=abc-1 n=3 service=registry',
      'time="2026-11-22T16:00:56.783Z" level=warning msg=plain environment=staging service=registry',
    ]);
  });

  it('writes one JSON object per line with time, level, msg and the fields, keys sorted as Go sorts them', () => {
    const { logger, lines } = capture({ formatter: 'json', fields: { service: 'registry', msg: 'clash' } });
    logger.error('boom', { 'http.response.status': 500 });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe('{"fields.msg":"clash","http.response.status":500,"level":"error","msg":"boom","service":"registry","time":"2026-11-22T16:00:56.783Z"}');
  });

  it('writes logstash objects', () => {
    const { logger, lines } = capture({ formatter: 'logstash', fields: { service: 'registry' } });
    logger.info('hello');
    expect(JSON.parse(lines[0])).toEqual({ '@timestamp': '2026-11-22T16:00:56.783Z', '@version': '1', level: 'info', message: 'hello', service: 'registry' });
  });

  it('drops lines below log.level', () => {
    const { logger, lines } = capture({ level: 'warn' });
    logger.debug('d');
    logger.info('i');
    logger.warn('w');
    logger.error('e');
    expect(lines.map((l) => l.match(/msg=(\w+)/)![1])).toEqual(['w', 'e']);
    expect(logger.enabled('info')).toBe(false);
  });

  it("keeps the demo's short lines without a log: section", () => {
    const lines: string[] = [];
    const logger = new Logger(DEFAULT_LOG_CONFIG, (l) => lines.push(l));
    logger.info('listening on http://127.0.0.1:5000');
    logger.warn('accepted, not applied here: health');
    expect(lines).toEqual(['demo-registry: listening on http://127.0.0.1:5000', 'demo-registry: warning: accepted, not applied here: health']);
  });

  it("prints durations as Go's time.Duration does", () => {
    expect([0, 850, 666_208, 1_066_643, 1.5e9, 123e9, 3600e9].map(goDuration)).toEqual(['0s', '850ns', '666.208µs', '1.066643ms', '1.5s', '2m3s', '1h0m0s']);
  });
});

describe('access lines', () => {
  const registry = () => {
    const app = express();
    app.get('/v2/', (_req, res) => {
      res.json({});
    });
    app.get('/v2/big', (_req, res) => {
      res.write('a'.repeat(1000));
      res.end('b');
    });
    return app;
  };

  it('logs method, URI, status, duration and bytes of every response, errors at error level', async () => {
    const { logger, lines } = capture({ formatter: 'json', fields: { service: 'registry' } });
    const client = request(createFrontApp(registry(), { accessLogger: logger }));
    await client.get('/v2/?x=1').set('User-Agent', 'skopeo/1.9.3');
    await client.get('/v2/big');
    await client.put('/v2/nothing');
    const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(entries).toHaveLength(3);
    expect(entries[0]).toMatchObject({
      level: 'info',
      msg: 'response completed',
      service: 'registry',
      'http.request.method': 'GET',
      'http.request.uri': '/v2/?x=1',
      'http.request.useragent': 'skopeo/1.9.3',
      'http.response.status': 200,
      'http.response.written': 2,
      'http.response.contenttype': 'application/json; charset=utf-8',
    });
    expect(entries[0]['http.response.duration']).toMatch(/^\d+(\.\d+)?(ns|µs|ms|s)$/);
    expect(entries[0]['http.request.remoteaddr']).toMatch(/:\d+$/);
    expect(entries[1]).toMatchObject({ 'http.request.uri': '/v2/big', 'http.response.written': 1001 });
    expect(entries[2]).toMatchObject({ level: 'error', msg: 'response completed with error', 'http.request.method': 'PUT', 'http.response.status': 404 });
  });

  it('adds http.headers to every response, 404s included', async () => {
    const client = request(createFrontApp(registry(), { headers: { 'X-Content-Type-Options': ['nosniff'], 'X-Two': ['a', 'b'] } }));
    for (const res of [await client.get('/v2/'), await client.get('/nowhere')]) {
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-two']).toBe('a, b');
    }
  });
});
