import { setTimeout as sleep } from "node:timers/promises";

/**
 * Polls `check` until it returns without throwing (and its value passes `until`, when given),
 * or the deadline passes; then throws the last failure. The test-side twin of a wait strategy.
 */
export async function eventually<T>(
  check: () => T | Promise<T>,
  options: { timeoutMs?: number; intervalMs?: number; until?: (value: T) => boolean } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (!options.until || options.until(value)) return value;
      lastError = new Error(`condition not met; last value: ${JSON.stringify(value)}`);
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw lastError;
    await sleep(options.intervalMs ?? 100);
  }
}
