import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { encodeEnvelope } from '../lib';
import { makeEvent } from './helpers/events';

// Packs the library as `npm pack` would publish it and installs the tarball into a
// project of its own, as a user would: both entry points by require and import, and
// the command lines through npx.
const root = path.resolve(__dirname, '..');
const run = promisify(execFile);

describe('the published package', () => {
  let consumer: string;
  const node = (args: string[]) => execFileSync('node', args, { cwd: consumer }).toString().trim();

  beforeAll(async () => {
    // Outside the clone, so nothing resolves through the clone's own node_modules.
    consumer = mkdtempSync(path.join(os.tmpdir(), 'registry-notifications-consumer-'));
    await run('npm', ['pack', '--silent', '--pack-destination', consumer], { cwd: root });
    const tarball = readdirSync(consumer).find((f) => f.endsWith('.tgz'))!;
    writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
    // Its dependencies and required peers (express, prom-client) come as for any user;
    // the optional store drivers do not.
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--no-package-lock', `./${tarball}`], { cwd: consumer });
  }, 180_000);
  afterAll(() => rmSync(consumer, { recursive: true, force: true }));

  it('ships compiled JavaScript and type declarations, not the TypeScript sources', () => {
    const dist = path.join(consumer, 'node_modules', 'registry-notifications', 'dist');
    const files = readdirSync(dist, { recursive: true }) as string[];
    expect(files).toEqual(
      expect.arrayContaining(['index.js', 'index.mjs', 'index.d.ts', 'pipeline.js', 'pipeline.mjs', 'pipeline.d.ts', path.join('bin', 'receiver.js')]),
    );
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.endsWith('.d.mts'))).toEqual([]);
  });

  it('ships the console page\'s assets and serves them, with the chart library from its installed dependency', () => {
    const dist = path.join(consumer, 'node_modules', 'registry-notifications', 'dist');
    const files = readdirSync(dist, { recursive: true }) as string[];
    expect(files).toEqual(expect.arrayContaining([path.join('inspect', 'console-assets', 'console.js'), path.join('inspect', 'console-assets', 'console.css')]));
    const script = `
      const express = require('express');
      const { createNotifications, createStatsRouter } = require('registry-notifications');
      const n = createNotifications({ endpoints: [] });
      const server = express().use(createStatsRouter(n)).listen(0, '127.0.0.1', async () => {
        const base = 'http://127.0.0.1:' + server.address().port + '/debug/notifications';
        const paths = ['', '/assets/console.js', '/assets/console.css', '/assets/uplot/uPlot.iife.min.js', '/assets/uplot/uPlot.min.css'];
        const out = [];
        for (const p of paths) {
          const res = await fetch(base + p);
          out.push(res.status + ' ' + res.headers.get('content-type').split(';')[0]);
        }
        console.log(out.join(', '));
        server.close();
        await n.close();
      });`;
    const js = '200 (?:text|application)/javascript';
    expect(node(['-e', script])).toMatch(new RegExp(`^200 text/html, ${js}, 200 text/css, ${js}, 200 text/css$`));
  });

  it('root and pipeline work from require; internals stay internal', () => {
    const script = `
      const root = require('registry-notifications');
      const pipeline = require('registry-notifications/pipeline');
      console.log([typeof root.createNotifications, typeof root.createReceiver, typeof root.createStatsRouter,
        typeof root.ConfigError, typeof pipeline.Endpoint, typeof pipeline.Queue, typeof pipeline.Bridge,
        typeof root.Endpoint, typeof root.expectMapping, typeof pipeline.globToRegExp].join(' '));`;
    expect(node(['-e', script])).toBe('function function function function function function function undefined undefined undefined');
  });

  it('root and pipeline work from import, with the same objects as require', () => {
    const script = `
      import { createNotifications, encodeEnvelope } from 'registry-notifications';
      import { Endpoint, SqliteStore } from 'registry-notifications/pipeline';
      import { createRequire } from 'node:module';
      const require = createRequire(import.meta.url);
      console.log(createNotifications === require('registry-notifications').createNotifications,
        Endpoint === require('registry-notifications/pipeline').Endpoint, typeof encodeEnvelope, typeof SqliteStore);`;
    expect(node(['--input-type=module', '-e', script])).toBe('true true function function');
  });

  it('loads with no store driver installed, and names the package when a store needs it', () => {
    const script = `
      const { createNotifications } = require('registry-notifications');
      const n = createNotifications({ endpoints: [{ name: 'a', url: 'http://127.0.0.1:9/' }] });
      n.close().then(() => {
        try { createNotifications({ queue: { type: 'sqlite', path: 'q.db' }, endpoints: [{ name: 'a', url: 'http://127.0.0.1:9/' }] }); }
        catch (err) { console.log(err.name + ' (' + err.cause.name + '): ' + err.message); }
      });`;
    expect(node(['-e', script])).toBe(
      // The delivery log, beside the queue's file, is the first SQLite file opened.
      'StoreOpenError (MissingDriverError): sqlite store at q-log.db: the sqlite store needs the package better-sqlite3, which is not installed: npm install better-sqlite3',
    );
  });

  it('npx registry-notifications-receiver prints each event it receives', async () => {
    // In a process group of its own: npx does not pass SIGTERM on to the receiver it starts.
    const child = spawn('npx', ['--no-install', 'registry-notifications-receiver', '--port', '0'], { cwd: consumer, detached: true });
    try {
      let stderr = '';
      const port = await new Promise<number>((resolve, reject) => {
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
          const m = /listening on 127\.0\.0\.1:(\d+)/.exec(stderr);
          if (m) resolve(Number(m[1]));
        });
        child.once('exit', (code) => reject(new Error(`receiver exited ${code}: ${stderr}`)));
      });
      const stdout = new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString())));
      const event = makeEvent('push');
      await new Promise<void>((resolve, reject) => {
        const req = http.request({ port, method: 'POST', headers: { 'content-type': 'application/vnd.docker.distribution.events.v1+json' } }, (res) => {
          res.resume();
          res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`));
        });
        req.on('error', reject);
        req.end(encodeEnvelope([event]));
      });
      expect(JSON.parse(await stdout).id).toBe(event.id);
    } finally {
      const exited = new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.once('exit', resolve)));
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
      await exited;
    }
  });

  it('npx registry-notifications-deadletters explains its usage', async () => {
    const result = await run('npx', ['--no-install', 'registry-notifications-deadletters'], { cwd: consumer }).catch((err) => err);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/usage: .*--config/);
  });
});
