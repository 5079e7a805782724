/** Assertions in the shape of @std/assert (JSR is unreachable here), over node:assert. */
import nodeAssert from "node:assert/strict";

export function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new Error(message);
}

export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  if (actual instanceof Uint8Array && expected instanceof Uint8Array) {
    if (actual.length !== expected.length) {
      throw new Error(
        `${message ?? "bytes differ"}: length ${actual.length} != ${expected.length}`,
      );
    }
    const at = actual.findIndex((b, i) => b !== expected[i]);
    if (at >= 0) {
      throw new Error(
        `${message ?? "bytes differ"} at index ${at}: ${actual[at]} != ${expected[at]}`,
      );
    }
    return;
  }
  nodeAssert.deepStrictEqual(actual, expected, message);
}

export function assertNotEquals<T>(actual: T, expected: T, message?: string): void {
  nodeAssert.notDeepStrictEqual(actual, expected, message);
}

export function assertStringIncludes(actual: string, expected: string, message?: string): void {
  if (!actual.includes(expected)) {
    throw new Error(
      `${message ?? "string does not include"} ${JSON.stringify(expected)}:\n${actual}`,
    );
  }
}

export function assertMatch(actual: string, pattern: RegExp, message?: string): void {
  if (!pattern.test(actual)) throw new Error(`${message ?? "no match for"} ${pattern}:\n${actual}`);
}

export function assertNotMatch(actual: string, pattern: RegExp, message?: string): void {
  if (pattern.test(actual)) {
    throw new Error(`${message ?? "unexpected match for"} ${pattern}:\n${actual}`);
  }
}

// deno-lint-ignore no-explicit-any
type ErrorClass<E extends Error> = new (...args: any[]) => E;

function checkError<E extends Error>(e: unknown, cls?: ErrorClass<E>, includes?: string): E {
  if (cls && !(e instanceof cls)) {
    throw new Error(`expected ${cls.name}, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
  }
  if (includes && !String((e as Error).message).includes(includes)) {
    throw new Error(
      `error message ${JSON.stringify((e as Error).message)} does not include ${
        JSON.stringify(includes)
      }`,
    );
  }
  return e as E;
}

export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  cls?: ErrorClass<E>,
  includes?: string,
): E {
  try {
    fn();
  } catch (e) {
    return checkError(e, cls, includes);
  }
  throw new Error("expected the function to throw");
}

export async function assertRejects<E extends Error = Error>(
  fn: () => Promise<unknown>,
  cls?: ErrorClass<E>,
  includes?: string,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    return checkError(e, cls, includes);
  }
  throw new Error("expected the promise to reject");
}
