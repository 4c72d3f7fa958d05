import { parseFollowArgs } from '../../lib/bin/follow';
import { UsageError } from '../../lib/bin/receiver';
import { FeedServer } from '../helpers/feed-server';
import { killClis, runCli } from '../helpers/cli-process';
import { waitFor } from '../helpers/wait';

const run = (args: string[]) => runCli('follow', args);

afterAll(killClis);

describe('follow CLI (real child process)', () => {
  let server: FeedServer;
  beforeAll(async () => {
    server = await FeedServer.start({ feed: { enabled: true }, log: { events: 6 } });
  });
  afterAll(() => server.close());

  test('prints one compact JSON line per event of its topics, then exits 0 on SIGTERM', async () => {
    await server.emit('manifest-pull', 2);
    await server.emit('manifest-push', 2);
    const cli = run(['--url', server.feedUrl, '--topic', '/manifest/push', '--limit', '1']);
    await waitFor(() => cli.stdout.length === 2);
    await server.emit('blob-push');
    await server.emit('manifest-push', 1, 'other/app');
    await waitFor(() => cli.stdout.length === 3);
    cli.child.kill('SIGTERM');
    expect((await cli.exited).code).toBe(0);
    const printed = cli.stdout.filter((l) => l !== '').map((l) => JSON.parse(l));
    expect(printed.map((e) => `${e.action} ${e.target.repository} ${e.target.tag}`)).toEqual(['push demo/app v0', 'push demo/app v1', 'push other/app v0']);
    // Distribution's envelope fields, without the kind the feed carries beside them.
    expect(printed[0]).not.toHaveProperty('kind');
    expect(cli.stdout.filter((l) => l !== '')).toHaveLength(3);
  });

  test('exits 1 naming the oldest cursor when its cursor has left the feed', async () => {
    const all = ((await (await fetch(`${server.feedUrl}?limit=1`)).json()) as { events: { id: string }[] }).events;
    await server.emit('tag-delete', 6);
    const cli = run(['--url', server.feedUrl, '--cursor', all[0].id]);
    const { code } = await cli.exited;
    expect(code).toBe(1);
    expect(cli.stderr.join('\n')).toMatch(new RegExp(`cursor ${all[0].id} is older than the feed keeps .*the oldest cursor is [0-9a-f-]{36}`));
  });

  test.each([
    [[], /missing --url/],
    [['--url', 'not a url'], /--url is not a URL/],
    [['--url', 'ftp://x/events'], /--url must be http: or https:/],
    [['--url', 'http://x/events', '--limit', '0'], /--limit must be a whole number from 1 to 1000, got "0"/],
    [['--url', 'http://x/events', '--topic', 'manifest'], /--topic must be a path/],
    [['--url', 'http://x/events', '--bogus'], /--bogus/],
  ])('bad arguments %j exit 2 naming the flag', async (args, message) => {
    const r = run(args);
    const { code } = await r.exited;
    expect(code).toBe(2);
    expect(r.stderr.join('\n')).toMatch(message);
    expect(r.stderr.join('\n')).toMatch(/usage: follow --url URL/);
    expect(r.stdout.join('')).toBe('');
  });
});

describe('parseFollowArgs', () => {
  test('reads the options of followEvents', () => {
    expect(parseFollowArgs(['--url', 'http://r:5001/events', '--consumer', 'scanner', '--topic', '/manifest/*', '--topic=/tag/delete', '--limit', '50', '--token', 't'])).toEqual({
      url: 'http://r:5001/events',
      consumer: 'scanner',
      topics: ['/manifest/*', '/tag/delete'],
      limit: 50,
      headers: { authorization: 'Bearer t' },
    });
    expect(parseFollowArgs(['--url=http://r/events', '--cursor', ''])).toEqual({ url: 'http://r/events', cursor: '' });
  });

  test('throws UsageError for empty names', () => {
    expect(() => parseFollowArgs(['--url', 'http://r/events', '--consumer', ''])).toThrow(UsageError);
    expect(() => parseFollowArgs(['--url', 'http://r/events', '--token', ''])).toThrow(UsageError);
  });
});
