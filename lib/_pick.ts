/** Composing option objects from the layer below without restating each field. Pure. */

/**
 * The `keys` of `value` that it has, as a new object: with a `const` list of keys, the
 * same list gives the type (`Pick<T, typeof KEYS[number]>`) and the copy.
 * @example
 * ```ts
 * import { pick } from "./_pick.ts";
 * const picked = pick({ a: 1, b: 2, c: 3 }, ["a", "c"] as const);
 * if (JSON.stringify(picked) !== '{"a":1,"c":3}') throw new Error();
 * ```
 */
export function pick<T extends object, K extends keyof T>(
  value: T,
  keys: readonly K[],
): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const key of keys) if (key in value) out[key] = value[key];
  return out;
}
