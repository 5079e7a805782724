/**
 * A rollout request as the page sends it (JSON), checked into a `RolloutRequest`: the same
 * limits as the flags of `deploy --fleet`. Pure.
 */
import { UsageError } from "../errors.ts";
import type { RolloutRequest, RolloutTarget } from "./port.ts";

/** What the confirmation showed: a rollout starts only if the request still means this. */
export interface Confirmed {
  boards: string[];
  build: string;
}

const MAX_RETRIES = 10;
const MAX_CONCURRENCY = 64;

function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new UsageError(`${what} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

function wholeNumber(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(
      `${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function text(value: unknown, name: string): string {
  if (typeof value !== "string" || value.trim() === "") {
    throw new UsageError(`${name} must be a non-empty string, got ${JSON.stringify(value)}`);
  }
  return value;
}

function parseTarget(value: unknown): RolloutTarget {
  const t = record(value, "target");
  switch (t.kind) {
    case "board":
      return { kind: "board", name: text(t.name, "target.name") };
    case "tag":
      return { kind: "tag", tag: text(t.tag, "target.tag") };
    case "fleet":
      return { kind: "fleet" };
    default:
      throw new UsageError(
        `target.kind must be "board", "tag" or "fleet", got ${JSON.stringify(t.kind)}`,
      );
  }
}

/**
 * The request in `value`. @throws {UsageError} Naming the field that is wrong.
 * @example
 * ```ts
 * import { parseRolloutRequest } from "./rollout_request.ts";
 * parseRolloutRequest({ target: { kind: "fleet" }, canary: 1, maxFailures: null, retries: 2, trigger: true });
 * ```
 */
export function parseRolloutRequest(value: unknown): RolloutRequest {
  const r = record(value, "the rollout request");
  const maxFailures = r.maxFailures === null || r.maxFailures === undefined
    ? null
    : wholeNumber(r.maxFailures, "maxFailures", 1, 1000);
  if (r.trigger !== undefined && typeof r.trigger !== "boolean") {
    throw new UsageError(`trigger must be true or false, got ${JSON.stringify(r.trigger)}`);
  }
  return {
    target: parseTarget(r.target),
    ...(r.release === undefined || r.release === null
      ? {}
      : { release: text(r.release, "release") }),
    canary: r.canary === undefined ? 0 : wholeNumber(r.canary, "canary", 0, 1000),
    maxFailures,
    retries: r.retries === undefined ? 0 : wholeNumber(r.retries, "retries", 0, MAX_RETRIES),
    trigger: r.trigger ?? true,
    ...(r.concurrency === undefined
      ? {}
      : { concurrency: wholeNumber(r.concurrency, "concurrency", 1, MAX_CONCURRENCY) }),
  };
}

/** `confirm` of a start request. @throws {UsageError} */
export function parseConfirmed(value: unknown): Confirmed {
  const c = record(value, "confirm");
  if (!Array.isArray(c.boards) || !c.boards.every((b) => typeof b === "string")) {
    throw new UsageError("confirm.boards must be the list of board names the page showed");
  }
  return { boards: c.boards as string[], build: text(c.build, "confirm.build") };
}

/** `--only` values of `deploy --fleet` for a target. Pure. */
export function onlyOf(target: RolloutTarget): string[] {
  switch (target.kind) {
    case "board":
      return [target.name];
    case "tag":
      return [target.tag];
    case "fleet":
      return [];
  }
}

/** "the board 'kitchen'", "the boards tagged 'sensor'", "the whole fleet". Pure. */
export function describeTarget(target: RolloutTarget): string {
  switch (target.kind) {
    case "board":
      return `the board '${target.name}'`;
    case "tag":
      return `the boards tagged '${target.tag}'`;
    case "fleet":
      return "the whole fleet";
  }
}
