import { startSampleApi, type RunningSampleApi } from '../../demo/sample-api.js';

export type RunningUpstream = RunningSampleApi;

/**
 * The sample API in this process on a free loopback port: it verifies the Bearer token against the
 * OP's JWKS and records every request in `received`.
 */
export async function startUpstream(op: { issuer: string; audience: string }): Promise<RunningUpstream> {
  return startSampleApi({ issuer: op.issuer, audience: op.audience, port: 0, host: '127.0.0.1' });
}
