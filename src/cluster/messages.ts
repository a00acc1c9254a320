/**
 * The primary's questions (and its hurry) to a worker and the worker's answers, over the cluster's IPC channel.
 * `bffCluster` tells them apart from Node's own and prom-client's messages on the same channel.
 */
export type Question = 'metrics' | 'readiness';

export interface Ask {
  readonly bffCluster: 'ask';
  readonly id: number;
  readonly question: Question;
}

export interface Answer {
  readonly bffCluster: 'answer';
  readonly id: number;
  /** metrics: the worker registry's getMetricsAsJSON(); readiness: ReadinessService.report(). */
  readonly value: unknown;
}

/** The primary had a second signal: a draining worker closes every connection now. */
export interface Hurry {
  readonly bffCluster: 'hurry';
  readonly signal: NodeJS.Signals;
}

function isRecord(message: unknown): message is Record<string, unknown> {
  return typeof message === 'object' && message !== null;
}

export function isAsk(message: unknown): message is Ask {
  return isRecord(message) && message['bffCluster'] === 'ask' && typeof message['id'] === 'number' && (message['question'] === 'metrics' || message['question'] === 'readiness');
}

export function isAnswer(message: unknown): message is Answer {
  return isRecord(message) && message['bffCluster'] === 'answer' && typeof message['id'] === 'number';
}

export function isHurry(message: unknown): message is Hurry {
  return isRecord(message) && message['bffCluster'] === 'hurry' && typeof message['signal'] === 'string';
}
