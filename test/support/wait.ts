/** Polls until `check` passes or the deadline ends; no fixed sleeps. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 15_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Waits until the gateway's /readyz answers 200 (discovery loaded). */
export async function waitUntilReady(url: string): Promise<void> {
  await eventually(async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined), 20_000, `${url}/readyz 200`);
}
