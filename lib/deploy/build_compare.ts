/**
 * A board's build against a build of ours: the same (up to date), older, newer, or not
 * known. The id says "the same"; "older" and "newer" go by build time, which is known for
 * the builds kept in `dist/releases/` (a board only reports its id). A board without an id
 * (firmware built before build ids) or with one we never kept is "unknown". From that,
 * what a deploy does with a board it can ask: push, skip it (it runs this build already),
 * or refuse (this build is older than the board's). Pure.
 */
import { type BuildStamp, describeBuild } from "../build/build_id.ts";
import { OtaError } from "../errors.ts";
import type { BoardBuild } from "../format/ota_module.ts";

/** The board's build compared with ours: "older" means the board runs an older one. */
export type BuildComparison = "up to date" | "older" | "newer" | "unknown";

/** Finds what we know of a build id (its kept release). */
export type KnownBuilds = (id: string) => BuildStamp | undefined;

/** This build is older than the one the board runs: pushing it is a downgrade. */
export class DowngradeRefusedError extends OtaError {}

/** The board booted after the push, but reports another build than the one pushed. */
export class BuildMismatchError extends OtaError {}

/** The board's build, with its time when we kept it. Pure. */
export function boardStamp(
  board: BoardBuild | undefined,
  known: KnownBuilds,
): BuildStamp | undefined {
  if (board?.id === undefined) return undefined;
  return known(board.id) ?? undefined;
}

/** How the board's build compares with `ours` (e.g. dist/manifest.json's). Pure. */
export function compareBuild(
  board: BoardBuild | undefined,
  ours: BuildStamp | undefined,
  known: KnownBuilds,
): BuildComparison {
  if (board?.id === undefined || ours === undefined) return "unknown";
  if (board.id === ours.id) return "up to date";
  const theirs = known(board.id);
  if (!theirs) return "unknown";
  const a = Date.parse(theirs.builtAt);
  const b = Date.parse(ours.builtAt);
  return a < b ? "older" : a > b ? "newer" : "unknown";
}

/** What to do with a board whose build was read before the push. */
export type PushDecision =
  | { action: "push"; note?: string }
  | { action: "skip"; reason: string };

/**
 * Push, or skip a board that runs `image` already (unless `force`). A downgrade (the
 * board's build is newer than `image`) is refused unless `allowDowngrade`. Pure.
 * @throws {DowngradeRefusedError} Naming both builds and the flag.
 */
export function decidePush(
  board: BoardBuild | undefined,
  image: BuildStamp | undefined,
  known: KnownBuilds,
  options: { force?: boolean; allowDowngrade?: boolean | "rollback"; where: string },
): PushDecision {
  if (image === undefined) {
    return { action: "push", note: "the image names no build id: it is pushed whatever runs" };
  }
  const comparison = compareBuild(board, image, known);
  if (comparison === "up to date") {
    if (options.force) return { action: "push", note: "--force: pushing the build it runs" };
    return { action: "skip", reason: `up to date: it runs build ${describeBuild(image)}` };
  }
  if (comparison === "newer") {
    const theirs = known(board!.id!)!;
    if (!options.allowDowngrade) {
      throw new DowngradeRefusedError(
        `${options.where} runs build ${describeBuild(theirs)}, built ${theirs.builtAt}, newer ` +
          `than ${describeBuild(image)} (built ${image.builtAt}): refusing the downgrade. ` +
          "Pass --allow-downgrade to push the older build, or build again.",
      );
    }
    return {
      action: "push",
      note: options.allowDowngrade === "rollback"
        ? `rolling back: the release replaces the newer build ${theirs.id}`
        : `--allow-downgrade: replacing the newer build ${theirs.id}`,
    };
  }
  if (board?.id !== undefined && comparison === "unknown") {
    return {
      action: "push",
      note:
        `it runs build ${board.id}, which is not kept in dist/releases: older or newer cannot be told`,
    };
  }
  return { action: "push" };
}

/**
 * After the push: the board must report `image`'s id. Pure.
 * @throws {BuildMismatchError} If it booted but reports another build, or none.
 */
export function checkBootedBuild(
  after: BoardBuild | undefined,
  before: BoardBuild | undefined,
  image: BuildStamp,
  where: string,
): void {
  if (after?.id === image.id) return;
  const reports = after?.id === undefined
    ? after?.ota === false ? "has no ota module" : "reports no build id"
    : after.id === before?.id
    ? `still reports its old build ${after.id}`
    : `reports build ${after.id}`;
  throw new BuildMismatchError(
    `${where} booted after the update but ${reports}, not ${describeBuild(image)}: it is not ` +
      "running the image that was sent. Another board may have taken the OTA packets (check " +
      "the addresses), or its flash did not keep the writes: look at it with 'deno task status' " +
      "and run deploy again; if it comes back the same, reflash it over serial.",
  );
}
