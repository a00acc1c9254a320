import { connect, createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface TcpRelay {
  readonly port: number;
  /**
   * From now on, bytes from the client (the gateway) are kept back; resolves when the first such
   * bytes arrived: the client is then waiting for an answer that cannot come until release().
   */
  hold(): Promise<void>;
  /** Sends what was kept back and relays freely again. */
  release(): void;
  /** Resolves when the client next sends bytes containing `text` (relayed as usual). */
  sees(text: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * A TCP relay between the gateway and a real server (Redis), used as a barrier: the test decides
 * when the gateway's command reaches the server, and learns when the gateway sent it.
 */
export async function startTcpRelay(targetPort: number): Promise<TcpRelay> {
  let held: Array<{ upstream: Socket; chunk: Buffer }> | undefined;
  let onHeld: (() => void) | undefined;
  let watchers: Array<{ text: string; resolve: () => void }> = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.once('close', () => sockets.delete(socket));
    }
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
    upstream.pipe(client);
    client.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      watchers = watchers.filter((w) => {
        if (!text.includes(w.text)) return true;
        w.resolve();
        return false;
      });
      if (held === undefined) {
        upstream.write(chunk);
        return;
      }
      held.push({ upstream, chunk });
      onHeld?.();
      onHeld = undefined;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    hold() {
      held = [];
      return new Promise((resolve) => (onHeld = resolve));
    },
    release() {
      const pending = held ?? [];
      held = undefined;
      for (const { upstream, chunk } of pending) upstream.write(chunk);
    },
    sees: (text) => new Promise((resolve) => watchers.push({ text, resolve })),
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
