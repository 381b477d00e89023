import { WebSocket } from 'ws';

/**
 * Many graphql-ws subscriptions from the load generator, on plain `ws` sockets speaking the
 * graphql-transport-ws protocol (lighter than a client library per subscriber).
 */
export interface Subscribers {
  /** Subscriptions that ended with an error or were completed by the server. */
  readonly ended: number;
  close(): Promise<void>;
}

export async function openSubscribers(options: {
  wsUrl: string;
  token: string | null;
  count: number;
  perConnection: number;
  operation: (index: number) => { query: string; variables?: Record<string, unknown> };
  /** Each `next` payload's data, with the index of the subscription it came for. */
  onNext: (index: number, data: Record<string, unknown>) => void;
}): Promise<Subscribers> {
  const sockets: WebSocket[] = [];
  let ended = 0;
  const connections = Math.ceil(options.count / options.perConnection);
  const open = async (connection: number) => {
    const socket = new WebSocket(options.wsUrl, 'graphql-transport-ws');
    sockets.push(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.once('open', () => {
        socket.send(
          JSON.stringify({
            type: 'connection_init',
            payload: options.token ? { token: options.token } : {},
          }),
        );
      });
      socket.on('message', (raw) => {
        const message = JSON.parse(String(raw)) as {
          type: string;
          id?: string;
          payload?: { data?: Record<string, unknown> };
        };
        if (message.type === 'connection_ack') resolve();
        else if (message.type === 'next' && message.payload?.data) {
          options.onNext(Number(message.id), message.payload.data);
        } else if (message.type === 'error' || message.type === 'complete') ended++;
      });
    });
    const first = connection * options.perConnection;
    const last = Math.min(options.count, first + options.perConnection);
    for (let index = first; index < last; index++) {
      socket.send(
        JSON.stringify({ id: String(index), type: 'subscribe', payload: options.operation(index) }),
      );
    }
  };
  // A few connections at a time, as a fleet of dashboards would connect.
  for (let start = 0; start < connections; start += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, connections - start) }, (_, i) => open(start + i)),
    );
  }
  return {
    get ended() {
      return ended;
    },
    async close() {
      await Promise.all(
        sockets.map(
          (socket) =>
            new Promise<void>((resolve) => {
              if (socket.readyState === WebSocket.CLOSED) return resolve();
              socket.once('close', () => resolve());
              socket.close(1000);
            }),
        ),
      );
    },
  };
}
