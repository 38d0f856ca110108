import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Handler } from '../../src/reports/routes.ts';

/** A bare node:http server on an ephemeral loopback port that mounts the given routes. */
export async function serveRoutes(routes: Record<string, Handler>): Promise<{ base: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const route = routes[path];
    if (!route) {
      res.writeHead(404).end();
      return;
    }
    route(req, res).catch((err: unknown) => {
      res.writeHead(500).end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
