/**
 * Load generator for bench/ingest.ts when wrk is not installed: a separate, light Node process
 * (raw `http.Agent` keep-alive, nothing else loaded) so the receiver under test does not share its
 * event loop with the client. Sends each pre-signed delivery of `<file>.1` once and prints one
 * `LOAD_RESULT {json}` line in the same shape as bench/ingest-wrk.lua.
 *
 *   node bench/ingest-load.ts --port P --file PREFIX --connections 16 --seconds 8
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    file: { type: 'string' },
    connections: { type: 'string' },
    seconds: { type: 'string' },
  },
  strict: true,
});
const port = Number(values.port);
const connections = Number(values.connections);
const seconds = Number(values.seconds);
if (!values.file || !(port > 0) || !(connections > 0) || !(seconds > 0)) {
  console.error('usage: ingest-load.ts --port P --file PREFIX --connections N --seconds S');
  process.exit(2);
}

const lines = readFileSync(`${values.file}.1`, 'utf8')
  .split('\n')
  .filter((l) => l.length > 0);
const requests = lines.map((line) => {
  const tab = line.indexOf('\t');
  return { signature: line.slice(0, tab), body: Buffer.from(line.slice(tab + 1)) };
});

const agent = new http.Agent({ keepAlive: true, maxSockets: connections });

function post(signature: string, body: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      path: '/webhooks/stripe',
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', 'content-length': body.length, 'stripe-signature': signature },
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

const latencies: number[] = [];
let next = 0;
let wrapped = 0;
let non2xx = 0;
let socketErrors = 0;
const started = performance.now();
const deadline = started + seconds * 1000;
await Promise.all(
  Array.from({ length: connections }, async () => {
    while (performance.now() < deadline) {
      if (next >= requests.length) {
        next = 0;
        wrapped += 1;
      }
      const r = requests[next++]!;
      const t = performance.now();
      const status = await post(r.signature, r.body);
      latencies.push(performance.now() - t);
      if (status === 0) socketErrors += 1;
      else if (status < 200 || status > 299) non2xx += 1;
    }
  }),
);
const elapsed = (performance.now() - started) / 1000;
agent.destroy();
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
console.log(
  `LOAD_RESULT ${JSON.stringify({ requests: latencies.length, seconds: elapsed, non2xx, socketErrors, p50Ms: pct(50), p99Ms: pct(99), wrapped })}`,
);
