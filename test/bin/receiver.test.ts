import { encodeEnvelope } from '../../lib/codec/envelope';
import { parseReceiverArgs, UsageError } from '../../lib/bin/receiver';
import { signWebhook } from '../../lib/codec/signing';
import { makeEvent } from '../helpers/events';
import { loadFixtures } from '../helpers/fixtures';
import { killClis, runCli, type RunningCli } from '../helpers/cli-process';

type Running = RunningCli;
const run = (args: string[]) => runCli('receiver', args);

/** Resolves with the first stderr line matching `re`, or rejects if the process exits first. */
function waitForLine(r: Running, lines: string[], re: RegExp): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const check = () => {
      for (const line of lines) {
        const m = line.match(re);
        if (m) return resolve(m);
      }
      if (r.child.exitCode !== null) return reject(new Error(`exited with ${r.child.exitCode}: ${r.stderr.join('\n')}`));
      setTimeout(check, 20);
    };
    check();
  });
}

async function startCli(args: string[]): Promise<Running & { url: string }> {
  const r = run(['--port', '0', ...args]);
  const m = await waitForLine(r, r.stderr, /^listening on (127\.0\.0\.1:\d+)$/);
  return { ...r, url: `http://${m[1]}/` };
}

afterAll(killClis);

describe('receiver CLI (real child process)', () => {
  test('prints one JSON line per distinct event of every fixture, then exits 0 on SIGTERM', async () => {
    const cli = await startCli(['--token', 'secret-token']);
    const fixtures = loadFixtures();
    for (const f of fixtures) {
      const res = await fetch(cli.url, { method: 'POST', headers: f.headers, body: f.body });
      expect(res.status).toBe(200);
    }
    // A redelivery is acknowledged but not printed again.
    const again = await fetch(cli.url, { method: 'POST', headers: fixtures[0].headers, body: fixtures[0].body });
    expect(await again.json()).toEqual({ accepted: 0, duplicates: 1 });
    // A wrong token is refused and printed nowhere on stdout.
    const denied = await fetch(cli.url, { method: 'POST', headers: { ...fixtures[0].headers, authorization: 'Bearer nope' }, body: fixtures[0].body });
    expect(denied.status).toBe(401);

    cli.child.kill('SIGTERM');
    const { code } = await cli.exited;
    expect(code).toBe(0);
    const printed = cli.stdout.filter((l) => l !== '').map((l) => JSON.parse(l));
    expect(printed).toEqual(fixtures.map((f) => f.parsed.events[0]));
    // Compact: exactly one line per event.
    expect(cli.stdout.filter((l) => l !== '')).toHaveLength(fixtures.length);
    expect(cli.stderr.join('\n')).toMatch(/POST \/ 401/);
  });

  test('--secret requires Standard Webhooks signatures; SIGINT also exits 0', async () => {
    const secret = 'whsec_' + Buffer.from('cli-test-secret-key').toString('base64');
    const cli = await startCli(['--secret', 'an-old-secret', '--secret', secret]);
    const e = makeEvent('pull');
    const body = encodeEnvelope([e]);
    const type = 'application/vnd.docker.distribution.events.v1+json';
    const unsigned = await fetch(cli.url, { method: 'POST', headers: { 'content-type': type }, body });
    expect(unsigned.status).toBe(401);
    const signed = signWebhook([secret], 'msg_1', Math.floor(Date.now() / 1000), body);
    const ok = await fetch(cli.url, { method: 'POST', headers: { 'content-type': type, ...signed }, body });
    expect(ok.status).toBe(200);
    cli.child.kill('SIGINT');
    expect((await cli.exited).code).toBe(0);
    expect(cli.stdout.filter((l) => l !== '').map((l) => JSON.parse(l).id)).toEqual([e.id]);
  });

  test.each([
    [['--token', 'x'], /missing --port/],
    [['--port', 'eighty'], /--port must be a whole number from 0 to 65535, got "eighty"/],
    [['--port', '70000'], /--port must be a whole number/],
    [['--port', '0', '--bogus'], /--bogus/],
  ])('bad arguments %j exit 2 naming the flag', async (args, message) => {
    const r = run(args);
    const { code } = await r.exited;
    expect(code).toBe(2);
    expect(r.stderr.join('\n')).toMatch(message);
    expect(r.stderr.join('\n')).toMatch(/usage: receiver --port P/);
    expect(r.stdout.join('')).toBe('');
  });
});

describe('parseReceiverArgs', () => {
  test('reads port, token and repeated secrets', () => {
    expect(parseReceiverArgs(['--port', '8080', '--token', 't', '--secret', 'a', '--secret=b'])).toEqual({
      port: 8080,
      token: 't',
      secrets: ['a', 'b'],
    });
    expect(parseReceiverArgs(['--port=0'])).toEqual({ port: 0, secrets: [] });
  });

  test('throws UsageError for missing values and empty strings', () => {
    expect(() => parseReceiverArgs(['--port'])).toThrow(UsageError);
    expect(() => parseReceiverArgs(['--port', '1', '--token', ''])).toThrow('--token must not be empty');
    expect(() => parseReceiverArgs(['--port', '1', 'extra'])).toThrow(UsageError);
  });
});
