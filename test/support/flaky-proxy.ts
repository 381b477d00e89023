import { createServer, connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP proxy in front of a test server that can lose answers and cut connections, as a
 * network does: `loseNextAnswers(n)` lets the next n requests reach the server (they commit)
 * and drops the connection as the answer starts to come back.
 */
export async function startFlakyProxy(target: string) {
  const { hostname, port } = new URL(target);
  const pairs = new Set<[Socket, Socket]>();
  let answersToLose = 0;
  let lost = 0;
  let refusing = false;
  const server = createServer((client) => {
    if (refusing) return void client.destroy();
    const upstream = connect(Number(port), hostname);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const cut = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    // Only answers to POSTs are lost (not WebSocket frames or other traffic).
    let lastRequestWasPost = false;
    client.on('data', (chunk) => {
      if (/^[A-Z]+ /.test(chunk.toString('latin1', 0, 8)))
        lastRequestWasPost = chunk.toString('latin1', 0, 5) === 'POST ';
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (answersToLose > 0 && lastRequestWasPost) {
        answersToLose--;
        lost++;
        return cut();
      }
      client.write(chunk);
    });
    client.on('close', cut);
    upstream.on('close', cut);
    client.on('error', cut);
    upstream.on('error', cut);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxyPort = (server.address() as AddressInfo).port;
  const url = new URL(target);
  url.port = String(proxyPort);
  return {
    url: url.toString(),
    loseNextAnswers(n: number) {
      answersToLose = n;
    },
    /** While on, every new connection is dropped at once (the server looks down). */
    refuseConnections(on: boolean) {
      refusing = on;
    },
    /** How many answers were lost so far. */
    lost: () => lost,
    /** Drop every open connection (HTTP and WebSocket). */
    cutAll() {
      for (const [a, b] of [...pairs]) {
        a.destroy();
        b.destroy();
      }
      pairs.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const [a, b] of pairs) {
          a.destroy();
          b.destroy();
        }
        server.close(() => resolve());
      }),
  };
}
