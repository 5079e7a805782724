/**
 * A request's JSON body, read with a cap: a body over the limit is refused from its
 * `Content-Length`, or as soon as the bytes streamed in pass it, before anything is parsed
 * (a 1.5 GB POST would otherwise be held in memory whole).
 */
import { OtaError, UsageError } from "../errors.ts";

/** The largest body the dashboard reads: a rollout request is a few hundred bytes. */
export const MAX_BODY_BYTES = 64 * 1024;

/** The body is over the limit: answered with 413. */
export class RequestTooLargeError extends OtaError {}

function tooLarge(limit: number): RequestTooLargeError {
  return new RequestTooLargeError(
    `the request body is over ${limit} bytes: the dashboard takes small JSON requests only`,
  );
}

/**
 * The body of `request`, parsed as a JSON object.
 * @throws {RequestTooLargeError} If it is over `limit` bytes.
 * @throws {UsageError} If it is not a JSON object.
 */
export async function readJsonBody(
  request: Request,
  limit = MAX_BODY_BYTES,
): Promise<Record<string, unknown>> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) {
    await request.body?.cancel().catch(() => {});
    throw tooLarge(limit);
  }
  const decoder = new TextDecoder();
  let text = "";
  let size = 0;
  if (request.body) {
    const reader = request.body.getReader();
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > limit) {
        await reader.cancel().catch(() => {});
        throw tooLarge(limit);
      }
      text += decoder.decode(value, { stream: true });
    }
  }
  try {
    const value: unknown = JSON.parse(text + decoder.decode());
    if (typeof value === "object" && value !== null && !Array.isArray(value)) {
      return value as Record<string, unknown>;
    }
  } catch {
    // Below.
  }
  throw new UsageError("the request body must be a JSON object");
}
