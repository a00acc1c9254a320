import { isAsk, isHurry, type Answer, type Question } from './messages.js';

/** What a worker tells the primary when asked. */
export type WorkerSources = { readonly [Q in Question]: () => Promise<unknown> };

/**
 * Answers the primary's questions (for METRICS_PORT, which only the primary serves). Returns the
 * function that stops answering: a listener left on the IPC channel would keep the worker alive.
 */
export function answerPrimary(sources: WorkerSources): () => void {
  const onMessage = (message: unknown): void => {
    if (!isAsk(message)) return;
    void sources[message.question]().then(
      (value) => reply({ bffCluster: 'answer', id: message.id, value }),
      // null: the primary counts it as unknown at once instead of waiting for its deadline
      () => reply({ bffCluster: 'answer', id: message.id, value: null }),
    );
  };
  process.on('message', onMessage);
  return () => process.off('message', onMessage);
}

function reply(answer: Answer): void {
  // the primary may be gone (it was killed): the worker is about to exit with it
  if (process.connected && process.send !== undefined) process.send(answer);
}

/**
 * The primary's second signal. A worker's own signals only start its drain: a signal sent to the
 * whole process group reaches it twice (directly and relayed by the primary), which is not a hurry.
 */
export function onPrimaryHurry(hurry: (signal: NodeJS.Signals) => void): void {
  process.on('message', (message: unknown) => {
    if (isHurry(message)) hurry(message.signal);
  });
}

/**
 * After its drain a worker leaves the cluster: the IPC channel would otherwise keep it running.
 * The primary then sees it exit as any process does.
 */
export function leaveCluster(): void {
  if (process.connected) process.disconnect();
}
