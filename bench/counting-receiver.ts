// A webhook endpoint for benchmarks, run as its own process so that its CPU is not
// charged to the sender. It counts events per envelope and answers 200; `GET /count`
// reports the count. Prints its port on stdout once listening.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

let events = 0;
let requests = 0;
const server = http.createServer((req, res) => {
  if (req.method === 'GET') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ events, requests }));
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const parsed = JSON.parse(body);
    events += Array.isArray(parsed) ? parsed.length : (parsed.events?.length ?? 1);
    requests++;
    res.writeHead(200);
    res.end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log((server.address() as AddressInfo).port);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
