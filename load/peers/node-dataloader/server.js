'use strict';
// load/peers/node-dataloader/server.js - issue 19's "what a team would write
// by hand" peer: an HTTP/2 cleartext (prior knowledge) gateway in front of a
// SageMaker model container that batches one-row requests with DataLoader.
//
//   node server.js --port P --upstream http://127.0.0.1:FC [--max-batch 256]
//                  [--max-sockets 64] [--schedule immediate|tick|timeout:MS]
//
// POST /invocations (or /endpoints/NAME/invocations): the body is one CSV
// row; every row of one event loop turn (--schedule, below) goes
// to the container in one POST /invocations, rows joined by "\n", at most
// --max-batch rows a call; the answer's lines are split back, one per row.
// No cache (every request is its own row), a keep-alive agent to the
// container. A failed call fails its rows' requests with the container's
// status (no retries). GET /ping answers 200. Prints "listening on
// 127.0.0.1:PORT" once bound.
const http = require('http');
const http2 = require('http2');
const DataLoader = require('dataloader');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const port = Number(arg('--port', '0'));
const upstream = new URL(arg('--upstream', 'http://127.0.0.1:8080'));
const maxBatch = Number(arg('--max-batch', '256'));
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(arg('--max-sockets', '64')) });

class UpstreamError extends Error {
  constructor(status, body) {
    super(`upstream answered ${status}`);
    this.status = status;
    this.body = body;
  }
}

// One call to the container for a batch of rows; resolves to one answer
// line per row, in order.
function invoke(rows) {
  return new Promise((resolve, reject) => {
    const body = rows.join('\n') + '\n';
    const req = http.request({
      agent,
      host: upstream.hostname,
      port: upstream.port,
      path: '/invocations',
      method: 'POST',
      headers: { 'content-type': 'text/csv', accept: 'text/csv', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        if (res.statusCode !== 200) {
          reject(new UpstreamError(res.statusCode, text));
          return;
        }
        const lines = text.split('\n');
        if (lines.length && lines[lines.length - 1] === '') lines.pop();
        if (lines.length !== rows.length) {
          reject(new UpstreamError(502, `${lines.length} answers for ${rows.length} rows`));
          return;
        }
        resolve(lines);
      });
      res.on('error', reject);
    });
    req.on('error', (e) => reject(new UpstreamError(502, String(e))));
    req.end(body);
  });
}

// When a batch is dispatched. DataLoader's default (a batch per tick: after
// the promise jobs of the current tick) gives batches of one row here: node's
// http2 module delivers each stream's frames in a callback of its own from
// C++, and the tick queue is drained after every such callback. So the
// default here is "immediate" (setImmediate: a batch per event loop turn,
// everything read from the sockets in one poll), the usual fix;
// "timeout:MS" waits MS milliseconds (setTimeout) as max_delay_us does.
const schedule = arg('--schedule', 'immediate');
const opts = { cache: false, maxBatchSize: maxBatch };
if (schedule === 'immediate') {
  opts.batchScheduleFn = (cb) => setImmediate(cb);
} else if (schedule.startsWith('timeout:')) {
  const ms = Number(schedule.slice(8));
  opts.batchScheduleFn = (cb) => setTimeout(cb, ms);
} else if (schedule !== 'tick') {
  process.stderr.write(`unknown --schedule ${schedule}: tick, immediate or timeout:MS\n`);
  process.exit(2);
}
const loader = new DataLoader(invoke, opts);

const server = http2.createServer({ settings: { maxConcurrentStreams: 1024 } });
server.on('stream', (stream, headers) => {
  const method = headers[':method'];
  const path = headers[':path'] || '';
  if (method === 'GET' && path === '/ping') {
    stream.respond({ ':status': 200 });
    stream.end();
    return;
  }
  if (method !== 'POST' || !/^(\/endpoints\/[^/]+)?\/invocations$/.test(path)) {
    stream.respond({ ':status': 404 });
    stream.end();
    return;
  }
  const chunks = [];
  stream.on('data', (c) => chunks.push(c));
  stream.on('error', () => {});
  stream.on('end', () => {
    const row = Buffer.concat(chunks).toString().replace(/\r?\n$/, '');
    if (row === '' || row.includes('\n')) {
      stream.respond({ ':status': 400, 'content-type': 'application/json' });
      stream.end('{"message": "one CSV row per request"}');
      return;
    }
    loader.load(row).then((line) => {
      if (stream.destroyed) return;
      stream.respond({ ':status': 200, 'content-type': 'text/csv' });
      stream.end(line + '\n');
    }, (e) => {
      if (stream.destroyed) return;
      stream.respond({ ':status': e.status || 500, 'content-type': 'application/json' });
      stream.end(e.body || JSON.stringify({ message: String(e) }));
    });
  });
});
server.on('sessionError', () => {});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening on 127.0.0.1:${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
