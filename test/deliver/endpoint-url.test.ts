import { DEFAULTS } from '../../lib';
import { Endpoint } from '../../lib/deliver/endpoint';
import { isSecretHeader, parseEndpointUrl } from '../../lib/deliver/endpoint-url';
import { HttpSink, HttpStatusError } from '../../lib/deliver/http-sink';
import { endpointVars } from '../../lib/inspect/debug-vars';
import { makeEvents } from '../helpers/events';
import { TestReceiver } from '../helpers/http-receiver';
import { waitFor } from '../helpers/wait';

describe('credentials in an endpoint URL', () => {
  let receiver: TestReceiver;
  beforeEach(async () => {
    receiver = await new TestReceiver().start();
  });
  afterEach(() => receiver.stop());

  const withSecrets = () => {
    const { port } = new URL(receiver.url);
    return `http://hook-user:p%40ss@127.0.0.1:${port}/hook?apikey=s3cret&team=ops`;
  };

  it('takes the URL apart: where requests go, what is shown, and the Basic credentials', () => {
    const u = parseEndpointUrl('https://alice:pw@hooks.example/x?token=t0k&page=2');
    expect(u.href).toBe('https://hooks.example/x?token=t0k&page=2');
    expect(u.shown).toBe('https://redacted:redacted@hooks.example/x?token=redacted&page=2');
    expect(u.authorization).toBe('Basic ' + Buffer.from('alice:pw').toString('base64'));
    expect(parseEndpointUrl('http://hooks.example/plain')).toEqual({ href: 'http://hooks.example/plain', shown: 'http://hooks.example/plain', authorization: undefined });
  });

  it('are sent as Basic auth to the URL without them, the query kept', async () => {
    const sink = new HttpSink(withSecrets());
    await sink.write(makeEvents(1));
    await sink.close();
    const got = receiver.requests[0];
    expect(got.headers.authorization).toBe('Basic ' + Buffer.from('hook-user:p@ss').toString('base64'));
    expect(got.url).toBe('/hook?apikey=s3cret&team=ops');
  });

  it('give way to a configured Authorization header', async () => {
    const sink = new HttpSink(withSecrets(), { headers: { authorization: ['Bearer configured'] } });
    await sink.write(makeEvents(1));
    await sink.close();
    expect(receiver.requests[0].rawHeaders.filter((h) => h.toLowerCase() === 'authorization')).toHaveLength(1);
    expect(receiver.requests[0].headers.authorization).toBe('Bearer configured');
  });

  it('never appear in error messages, dead-letter reasons or /debug/vars', async () => {
    receiver.respond = () => 500;
    const sink = new HttpSink(withSecrets());
    const err = await sink.write(makeEvents(1)).catch((e: Error) => e);
    await sink.close();
    expect(err).toBeInstanceOf(HttpStatusError);
    expect((err as Error).message).not.toMatch(/s3cret|p%40ss|hook-user/);
    expect((err as Error).message).toContain('redacted');

    const errors: string[] = [];
    const endpoint = new Endpoint(
      { name: 'scanner', url: withSecrets(), maxRetries: 0, headers: { 'X-Auth-Token': ['t1'], 'Private-Token': ['t2'], 'X-Team': ['ops'] } },
      { onError: (e) => errors.push(e.message) },
    );
    await endpoint.write(makeEvents(1));
    await waitFor(async () => (await endpoint.deadLetters.count()) === 1, { describe: () => errors.join('; ') });
    const [letter] = await endpoint.listDeadLetters();
    const vars = endpointVars(endpoint);
    await endpoint.close();
    for (const text of [letter.reason, ...errors, JSON.stringify(vars)]) expect(text).not.toMatch(/s3cret|p%40ss|hook-user|"t1"|"t2"/);
    expect(vars.url).toBe(`http://redacted:redacted@127.0.0.1:${new URL(receiver.url).port}/hook?apikey=redacted&team=ops`);
    expect(vars.Headers).toEqual({ 'X-Auth-Token': ['<redacted>'], 'Private-Token': ['<redacted>'], 'X-Team': ['ops'] });
  });

  it('names credential headers as secret, and leaves others alone', () => {
    for (const name of ['Authorization', 'Proxy-Authorization', 'Cookie', 'X-Api-Key', 'X-Auth-Token', 'Private-Token', 'X-Hub-Signature']) expect(isSecretHeader(name)).toBe(true);
    for (const name of ['Content-Type', 'X-Team', 'User-Agent']) expect(isSecretHeader(name)).toBe(false);
    expect(DEFAULTS.http.userAgent).toBe('registry-notifications');
  });
});
