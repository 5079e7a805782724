/**
 * Releases you can go back to: every successful `build-ota` also keeps its image and
 * manifest under `dist/releases/<build-id>/`. yaota8266 keeps one app, updated in place
 * (docs/device.md, "Flash layout"), so the only rollback is pushing an older build again:
 * `deploy --release <build-id|previous>` does, and `status` names the release a board runs.
 * Releases are never removed by the tools: delete the folders you no longer need.
 */
import { dirname, join } from "node:path";
import { createHash } from "node:crypto";
import { ConfigError, FileError, UsageError } from "../errors.ts";
import type { BuildStamp } from "./build_id.ts";
import { FIRMWARE_FILE, MANIFEST_FILE, parseBuildStamp } from "./build_outputs.ts";

export const RELEASES_DIR = "releases";
/** The word `deploy --release` takes for the build before the current one. */
export const PREVIOUS = "previous";

/** A kept build. */
export interface Release extends BuildStamp {
  /** `out/releases/<id>`. */
  dir: string;
  /** The image, `dir/firmware-ota.bin`. */
  firmware: string;
  /** The image's SHA-256 from its manifest. */
  sha256?: string;
}

/** The release named is not kept (or "previous" has none). */
export class ReleaseNotFoundError extends FileError {}

/** A kept release's image is not the build its manifest names. */
export class ReleaseMismatchError extends FileError {}

/** The fewest digits of a build id `--release` takes: fewer would name builds by chance. */
export const MIN_RELEASE_DIGITS = 4;

/**
 * The manifest at `path` as JSON; undefined if there is none (or, unless `strict`, if it
 * is not JSON). @throws {ConfigError} With `strict`: it exists but is corrupt.
 */
async function readJson(
  path: string,
  strict = false,
): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (strict && !(e instanceof Deno.errors.NotFound)) {
      throw new ConfigError(`cannot read '${path}': ${(e as Error).message}`);
    }
    return undefined;
  }
  try {
    const json = JSON.parse(text.replace(/^\uFEFF/, ""));
    if (json !== null && typeof json === "object" && !Array.isArray(json)) return json;
    if (!strict) return undefined;
    throw new SyntaxError("it holds no JSON object");
  } catch (e) {
    if (!strict) return undefined;
    throw new ConfigError(
      `'${path}' is corrupt (${(e as Error).message}): run 'deno task build-ota' again, ` +
        "or remove it",
    );
  }
}

/**
 * The `build` and image hash of the manifest at `path`, if it has a build.
 * @throws {ConfigError} With `strict`: the manifest exists but is corrupt.
 */
export async function readManifestBuild(
  path: string,
  strict = false,
): Promise<(BuildStamp & { sha256?: string }) | undefined> {
  const json = await readJson(path, strict);
  const build = parseBuildStamp(json?.build);
  if (!build) return undefined;
  const sha256 = (json?.image as { sha256?: unknown } | undefined)?.sha256;
  return { ...build, ...(typeof sha256 === "string" ? { sha256 } : {}) };
}

/**
 * The build `out/manifest.json` describes (the current build), if any.
 * @throws {ConfigError} If the manifest is there but corrupt (naming it and the error).
 */
export function currentBuild(out: string): Promise<(BuildStamp & { sha256?: string }) | undefined> {
  return readManifestBuild(join(out, MANIFEST_FILE), true);
}

/**
 * Checks what `--release` names before any release is looked up: "previous", or at
 * least `MIN_RELEASE_DIGITS` hex digits of a build id. Pure.
 * @throws {UsageError} Saying what it takes.
 */
export function checkReleaseName(name: string): void {
  if (name === PREVIOUS) return;
  const takes = `a build id (at least ${MIN_RELEASE_DIGITS} of its hex digits) or '${PREVIOUS}'`;
  if (name === "") throw new UsageError(`--release is empty: give ${takes}`);
  if (!/^[0-9a-f]+$/i.test(name)) {
    throw new UsageError(`--release '${name}' is not a build id: give ${takes}`);
  }
  if (name.length < MIN_RELEASE_DIGITS) {
    throw new UsageError(
      `--release '${name}' has ${name.length} digit${name.length === 1 ? "" : "s"}: give at ` +
        `least ${MIN_RELEASE_DIGITS} digits of a build id, or '${PREVIOUS}'`,
    );
  }
}

/**
 * Whether `image` carries the build id `id`: build-ota freezes it into the image's
 * `ota` module (a string constant travels as its bytes). Pure.
 */
export function imageCarriesBuild(image: Uint8Array, id: string): boolean {
  const needle = new TextEncoder().encode(id);
  outer: for (let at = image.indexOf(needle[0]!); at >= 0; at = image.indexOf(needle[0]!, at + 1)) {
    for (let i = 1; i < needle.length; i++) if (image[at + i] !== needle[i]) continue outer;
    return true;
  }
  return false;
}

/**
 * Before anything is sent: the release's image must be the build its manifest names.
 * @throws {ReleaseMismatchError} If the image does not carry that build id.
 */
async function checkReleaseImage(release: Release): Promise<void> {
  let image: Uint8Array;
  try {
    image = await Deno.readFile(release.firmware);
  } catch {
    return; // the preflight names a missing or unreadable image
  }
  if (imageCarriesBuild(image, release.id)) return;
  throw new ReleaseMismatchError(
    `${release.firmware} does not carry the build id ${release.id} that ${
      join(release.dir, MANIFEST_FILE)
    } names: the image is another build's (or the manifest was edited). Nothing was sent. ` +
      `Send a release whose image matches, or remove ${release.dir} and build again.`,
  );
}

async function writeAtomically(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp`;
  if (typeof data === "string") await Deno.writeTextFile(tmp, data);
  else await Deno.writeFile(tmp, data);
  await Deno.rename(tmp, path);
}

/**
 * Keeps a build under `out/releases/<id>/`. Returns the release and, when one with this
 * id was kept already, whether its image was the same: the same id with another image
 * means something outside the id's inputs changed (a tree that is not a git checkout).
 * Needs read and write permissions.
 */
export async function keepRelease(
  out: string,
  build: BuildStamp,
  image: Uint8Array,
  manifestText: string,
  sha256: string,
): Promise<{ release: Release; earlier?: "same image" | "another image" }> {
  const dir = join(out, RELEASES_DIR, build.id);
  const before = await readManifestBuild(join(dir, MANIFEST_FILE));
  await Deno.mkdir(dir, { recursive: true });
  await writeAtomically(join(dir, FIRMWARE_FILE), image);
  await writeAtomically(join(dir, MANIFEST_FILE), manifestText);
  const release = { ...build, dir, firmware: join(dir, FIRMWARE_FILE), sha256 };
  if (!before) return { release };
  return { release, earlier: before.sha256 === sha256 ? "same image" : "another image" };
}

/** Every kept release, oldest first (by build time). Needs `--allow-read`. */
export async function listReleases(out: string): Promise<Release[]> {
  const root = join(out, RELEASES_DIR);
  const found: Release[] = [];
  try {
    for await (const entry of Deno.readDir(root)) {
      if (!entry.isDirectory) continue;
      const dir = join(root, entry.name);
      const build = await readManifestBuild(join(dir, MANIFEST_FILE));
      if (!build || build.id !== entry.name) continue;
      found.push({ ...build, dir, firmware: join(dir, FIRMWARE_FILE) });
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return found.sort((a, b) =>
    Date.parse(a.builtAt) - Date.parse(b.builtAt) || (a.id < b.id ? -1 : 1)
  );
}

/**
 * The release `name` means: a build id (or a unique prefix of at least 4 digits), or
 * "previous": the newest one built before `current` (the build in `out/manifest.json`;
 * without one, the newest but one). Pure.
 * @throws {ReleaseNotFoundError} Naming what is kept.
 */
export function chooseRelease(
  releases: readonly Release[],
  name: string,
  current: BuildStamp | undefined,
  out = "dist",
): Release {
  checkReleaseName(name);
  const where = join(out, RELEASES_DIR);
  const kept = releases.length
    ? `kept there: ${releases.map((r) => r.id + (r.version ? ` (${r.version})` : "")).join(", ")}`
    : "none is kept there yet: each successful 'deno task build-ota' keeps one";
  if (name === PREVIOUS) {
    const currentAt = current ? Date.parse(current.builtAt) : undefined;
    const before = currentAt === undefined
      ? releases.slice(0, -1)
      : releases.filter((r) => r.id !== current!.id && Date.parse(r.builtAt) < currentAt);
    const previous = before.at(-1);
    if (!previous) {
      throw new ReleaseNotFoundError(
        `no release before ${
          current ? `the current build ${current.id}` : "the newest"
        } in ${where} (${kept})`,
      );
    }
    return previous;
  }
  const matches = releases.filter((r) => r.id.startsWith(name.toLowerCase()));
  if (matches.length === 1) return matches[0]!;
  throw new ReleaseNotFoundError(
    matches.length > 1
      ? `'${name}' names ${matches.length} releases in ${where}: give more digits (${
        matches.map((r) => r.id).join(", ")
      })`
      : `no release '${name}' in ${where} (${kept}). Name a build id or '${PREVIOUS}'.`,
  );
}

/** The release whose id is `id`, if kept. Pure. */
export function releaseById(releases: readonly Release[], id: string): Release | undefined {
  return releases.find((r) => r.id === id);
}

/** Only the id, time and label of a build. Pure. */
export function stampOf(build: BuildStamp): BuildStamp {
  return {
    id: build.id,
    builtAt: build.builtAt,
    ...(build.version === undefined ? {} : { version: build.version }),
  };
}

/**
 * Every build whose time we know, by id: the kept releases and the current build (which
 * orders "older" and "newer", see `build_compare.ts`). Pure.
 */
export function knownBuilds(
  releases: readonly Release[],
  current: BuildStamp | undefined,
): (id: string) => BuildStamp | undefined {
  const byId = new Map<string, BuildStamp>(releases.map((r) => [r.id, stampOf(r)]));
  if (current && !byId.has(current.id)) byId.set(current.id, stampOf(current));
  return (id) => byId.get(id);
}

/** What deploy sends, and what it knows about builds. */
export interface ImageChoice {
  /** The image (or canned file) to send. */
  file: string;
  /** Set for a build output (`out` or a release folder): its manifest must describe `file`. */
  buildDir?: string;
  /** The build being sent, when a manifest says which it is. */
  build?: BuildStamp;
  /** Set with `--release`. */
  release?: Release;
  /** Every build whose time we know: the kept releases and the current build. */
  known: (id: string) => BuildStamp | undefined;
}

/**
 * The image `deploy` sends: FILE, a kept release (`--release ID|previous`), or the current
 * build (`out/firmware-ota.bin`); and its build, from the manifest that describes it (for
 * FILE: a `manifest.json` beside it whose SHA-256 is FILE's). Needs `--allow-read`.
 * @throws {UsageError} If `release` is not "previous" or at least 4 digits of a build id.
 * @throws {ReleaseNotFoundError} If the release named is not kept.
 * @throws {ReleaseMismatchError} If its image is not the build its manifest names.
 * @throws {ConfigError} If `out/manifest.json` is corrupt.
 */
export async function chooseImage(
  given: { file?: string; release?: string },
  out: string,
): Promise<ImageChoice> {
  if (given.release !== undefined) checkReleaseName(given.release);
  const releases = await listReleases(out);
  const current = await currentBuild(out);
  const known = knownBuilds(releases, current);
  if (given.release !== undefined) {
    const release = chooseRelease(releases, given.release, current, out);
    await checkReleaseImage(release);
    return {
      file: release.firmware,
      buildDir: release.dir,
      build: stampOf(release),
      release,
      known,
    };
  }
  if (given.file === undefined) {
    return {
      file: join(out, FIRMWARE_FILE),
      buildDir: out,
      ...(current ? { build: stampOf(current) } : {}),
      known,
    };
  }
  const beside = await readManifestBuild(join(dirname(given.file), MANIFEST_FILE));
  let build: BuildStamp | undefined;
  if (beside?.sha256 !== undefined) {
    try {
      const bytes = await Deno.readFile(given.file);
      if (createHash("sha256").update(bytes).digest("hex") === beside.sha256) {
        build = stampOf(beside);
      }
    } catch {
      // The preflight names a missing or unreadable file.
    }
  }
  return { file: given.file, ...(build ? { build } : {}), known };
}
