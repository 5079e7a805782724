/**
 * Runs `work` on every item, at most `limit` at a time, and gives the results in the
 * items' order. `onDone` hears each result as it comes (progress). The first error
 * stops new items from starting and is thrown once the running ones end.
 * @example
 * ```ts
 * import { mapPool } from "./_pool.ts";
 * const doubled = await mapPool([1, 2, 3], 2, (n) => Promise.resolve(n * 2));
 * if (doubled.join() !== "2,4,6") throw new Error();
 * ```
 */
export async function mapPool<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
  onDone?: (result: R, done: number, index: number) => void,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let done = 0;
  let failed = false;
  const worker = async () => {
    while (next < items.length && !failed) {
      const index = next++;
      try {
        results[index] = await work(items[index]!, index);
      } catch (e) {
        failed = true;
        throw e;
      }
      onDone?.(results[index]!, ++done, index);
    }
  };
  const workers = Math.max(1, Math.min(Math.floor(limit), items.length));
  const settled = await Promise.allSettled(Array.from({ length: workers }, worker));
  const failure = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failure) throw failure.reason;
  return results;
}
