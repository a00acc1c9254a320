import { createServer } from 'node:net';

/**
 * A port that was free a moment ago. Only for servers whose own URL must be known before they
 * listen (the gateway's PUBLIC_URL, an OP's issuer); everything else listens on port 0.
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
