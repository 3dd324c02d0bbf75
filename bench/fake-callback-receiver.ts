// The callback service the runner benchmarks report to: a FAKE (they measure the runner alone).
import { createServer } from 'node:http';

/** A FAKE callback service: accepts every callback and keeps the done payload. */
export async function fakeCallbackReceiver() {
  let done: any;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (req.url?.endsWith('/done')) done = JSON.parse(body);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"running","applied":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, done: () => done, close: () => new Promise((r) => server.close(r)) };
}
