import { once } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';

/** An upstream whose responses stream until the test releases them: the in-flight request of a shutdown. */
export interface StreamingUpstream {
  readonly url: string;
  /** Responses that have sent their first chunk and wait for release(). */
  readonly open: ServerResponse[];
  release(): void;
  close(): Promise<void>;
}

export async function startStreamingUpstream(): Promise<StreamingUpstream> {
  const open: ServerResponse[] = [];
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first\n');
    open.push(res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    open,
    release() {
      for (const res of open.splice(0)) res.end('last\n');
    },
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** How a streaming response ended: completely (with the rest of its body) or cut. */
export type StreamEnd = { readonly ended: 'complete'; readonly rest: string } | { readonly ended: 'cut' };

/** Reads a response's first chunk; `end` settles either way, so a cut stream is never an unhandled rejection. */
export async function followStream(response: Response): Promise<{ first: string | undefined; end: Promise<StreamEnd> }> {
  const body = response.body;
  if (body === null) throw new Error('no body');
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  const first = await reader.read();
  const end = (async (): Promise<StreamEnd> => {
    let rest = '';
    for (let chunk = await reader.read(); chunk.done !== true; chunk = await reader.read()) rest += chunk.value;
    return { ended: 'complete', rest };
  })().catch((): StreamEnd => ({ ended: 'cut' }));
  return { first: first.value, end };
}
