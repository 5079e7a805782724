/**
 * Keys for the benchmark: the vendored test keys (tests/vectors/) when the checkout has them,
 * else freshly generated (RSA, e=3). Test keys only.
 */
import { generateKey } from "../format/keys.ts";

export function benchmarkKeys(): { k512: string; k2048: string } {
  const read = (bits: number) => {
    try {
      return Deno.readTextFileSync(
        new URL(`../../tests/vectors/test-key-${bits}.pem`, import.meta.url),
      );
    } catch {
      return generateKey(bits).privatePem;
    }
  };
  return { k512: read(512), k2048: read(2048) };
}
