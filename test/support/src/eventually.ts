import { setTimeout as sleep } from "node:timers/promises";

/**
 * Polls `check` until it returns without throwing (and its value passes `until`, when given),
 * or the deadline passes; then throws the last failure. The test-side twin of a wait strategy.
 * Checks again after 10 ms, then twice as long each time up to `intervalMs` (100): a condition
 * met within milliseconds is seen within milliseconds, a slow one is not polled hard.
 */
export async function eventually<T>(
  check: () => T | Promise<T>,
  options: { timeoutMs?: number; intervalMs?: number; until?: (value: T) => boolean } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  const longest = options.intervalMs ?? 100;
  let wait = Math.min(10, longest);
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
    await sleep(wait);
    wait = Math.min(wait * 2, longest);
  }
}
