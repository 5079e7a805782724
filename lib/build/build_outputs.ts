/**
 * What `build-ota` leaves in its output folder (`dist/` by default), and the rule that
 * keeps a plain `deploy` from sending an old build: `dist/firmware-ota.bin` is there only
 * if the last build succeeded. A build first moves the previous image and manifest to
 * `dist/stale/` (with a note saying why); only a successful build writes new ones and
 * clears `stale/`. A failed or interrupted build leaves no image where deploy looks.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { removeIfExists } from "../_fs.ts";
import { ConfigError, FileError, UnsafeImageError } from "../errors.ts";
import { formatHex } from "../_bytes.ts";
import { parseAppOffset } from "../config/values.ts";
import type { BuildStamp } from "./build_id.ts";

/** The output folder of build-ota and build-bootloader unless the config's "out" says otherwise. */
export const DEFAULT_BUILD_DIR = "dist";
export const FIRMWARE_FILE = "firmware-ota.bin";
export const MANIFEST_FILE = "manifest.json";
export const STALE_DIR = "stale";
/** The note in `stale/` saying where its files came from. */
export const STALE_NOTE = "README.txt";

/** The outputs a build replaces; they move to `stale/` together. */
const OUTPUTS = [FIRMWARE_FILE, MANIFEST_FILE];

/** The note for `stale/`. Pure. */
export function staleNote(out: string, when: Date, release?: string): string {
  return [
    `These files are the build that was in ${out} when a new 'deno task build-ota' started`,
    `(${when.toISOString()}). That build has not succeeded (it failed or was interrupted: see`,
    `${join(out, "build.log")}), so they were moved here: a plain 'deno task deploy' sends only`,
    `${join(out, FIRMWARE_FILE)}, which exists only after a successful build.`,
    "",
    "To send this older build anyway, name it:",
    `  deno task deploy --ip ADDR ${join(out, STALE_DIR, FIRMWARE_FILE)}`,
    ...(release === undefined ? [] : [
      `It is also kept as release ${release} (${join(out, "releases", release)}/):`,
      `  deno task deploy --ip ADDR --release ${release}`,
      `or, to make it the current build again, copy that folder's files into ${out}/.`,
    ]),
    "The next successful build removes this folder.",
    "",
  ].join("\n");
}

/**
 * Moves the previous build's image and manifest to `out/stale/` (replacing an older
 * stale pair) and writes the note. Returns the files moved (none when there was no
 * previous build: an older stale pair then stays). Needs read and write permissions.
 */
export async function retireBuildOutputs(
  out: string,
  when: Date,
  release?: string,
): Promise<string[]> {
  const present: string[] = [];
  for (const name of OUTPUTS) {
    if (await Deno.lstat(join(out, name)).then(() => true, () => false)) present.push(name);
  }
  if (present.length === 0) return [];
  const stale = join(out, STALE_DIR);
  await Deno.mkdir(stale, { recursive: true });
  for (const name of OUTPUTS) await removeIfExists(join(stale, name));
  for (const name of present) await Deno.rename(join(out, name), join(stale, name));
  await Deno.writeTextFile(join(stale, STALE_NOTE), staleNote(out, when, release));
  return present;
}

/** After a successful build: removes `out/stale/` (only the files a build put there). */
export async function clearStaleOutputs(out: string): Promise<void> {
  const stale = join(out, STALE_DIR);
  for (const name of [...OUTPUTS, STALE_NOTE]) await removeIfExists(join(stale, name));
  await Deno.remove(stale).catch(() => {}); // kept if the user put something else there
}

/** The fields of `manifest.json` that deploy compares with the image it is about to send. */
export interface ManifestFacts {
  sha256?: string;
  appOffset?: number;
  /** The build id, time and label (absent in manifests from before build ids). */
  build?: BuildStamp;
}

/** The manifest's `build` object, if it is well formed. Pure. */
export function parseBuildStamp(value: unknown): BuildStamp | undefined {
  const b = value as Record<string, unknown> | null | undefined;
  if (typeof b?.id !== "string" || !/^[0-9a-f]{4,64}$/.test(b.id)) return undefined;
  if (typeof b.builtAt !== "string" || Number.isNaN(Date.parse(b.builtAt))) return undefined;
  return {
    id: b.id,
    builtAt: b.builtAt,
    ...(typeof b.version === "string" && b.version !== "" ? { version: b.version } : {}),
  };
}

/**
 * Reads the facts deploy checks from a manifest's text; the app offset goes through the
 * same check as every other source. Pure.
 * @throws {ConfigError} If it is not JSON or its app offset is not a valid one.
 */
export function parseManifest(text: string, path: string): ManifestFacts {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(
      `'${path}' is not valid JSON (${(e as Error).message}): run 'deno task build-ota' again`,
    );
  }
  const image = (json as { image?: Record<string, unknown> } | null)?.image ?? {};
  const sha256 = typeof image.sha256 === "string" ? image.sha256 : undefined;
  const appOffset = image.appOffset === undefined
    ? undefined
    : parseAppOffset(image.appOffset, { file: path, key: "image.appOffset" });
  const parsed = parseBuildStamp((json as { build?: unknown } | null)?.build);
  const userStart =
    typeof image.flashUserStart === "string" && /^0x[0-9a-f]+$/i.test(image.flashUserStart)
      ? parseInt(image.flashUserStart, 16)
      : undefined;
  const build = parsed && userStart !== undefined
    ? { ...parsed, flashUserStart: userStart }
    : parsed;
  return { sha256, appOffset, ...(build ? { build } : {}) };
}

/**
 * Why the image at `file` (the default build output) must not be sent as the current
 * build, given its manifest: it is not the image the manifest describes, or it was
 * built for another app offset. Pure.
 */
export function manifestMismatch(
  bytes: Uint8Array,
  facts: ManifestFacts,
  appOffset: number,
  paths: { file: string; manifest: string },
): FileError | UnsafeImageError | undefined {
  if (facts.sha256 !== undefined) {
    const actual = createHash("sha256").update(bytes).digest("hex");
    if (actual !== facts.sha256) {
      return new FileError(
        `${paths.file} is not the image ${paths.manifest} describes (sha256 ${
          actual.slice(0, 12)
        }…, not ${facts.sha256.slice(0, 12)}…): it changed after 'deno task build-ota' wrote ` +
          `both. Build again, or name the file to send it as it is: deno task deploy --ip ADDR ${paths.file}`,
      );
    }
  }
  if (facts.appOffset !== undefined && facts.appOffset !== appOffset) {
    return new UnsafeImageError(
      `${paths.file} was built for app offset ${formatHex(facts.appOffset)} (${paths.manifest}), ` +
        `but the device's is ${formatHex(appOffset)}: it would not boot there. Build for ` +
        `${formatHex(appOffset)} ('deno task build-ota --app-offset ${formatHex(appOffset)}'), ` +
        `or give the device's real app offset (--app-offset, or 'appOffset' in ota.config.json)`,
    );
  }
  return undefined;
}

/** The message for a missing default image: a failed build's leftovers are named. Pure. */
export function missingBuildMessage(out: string, staleExists: boolean): string {
  const file = join(out, FIRMWARE_FILE);
  return staleExists
    ? `no ${file}: the last 'deno task build-ota' did not succeed (see ${
      join(out, "build.log")
    }), and the build before it was moved to ${join(out, STALE_DIR)}/. Fix and run the ` +
      `build again, or send the older build by naming it: deno task deploy --ip ADDR ${
        join(out, STALE_DIR, FIRMWARE_FILE)
      }`
    : `no file at '${file}'. Build one with 'deno task build-ota', or name the image to send.`;
}

/**
 * For the image deploy sends by default (`out/firmware-ota.bin`): why it is not the
 * current build, from the manifest beside it, if there is one. Needs --allow-read.
 * @throws {ConfigError} If the manifest is unreadable JSON or names a bad app offset.
 */
export async function defaultBuildProblem(
  out: string,
  bytes: Uint8Array,
  appOffset: number,
): Promise<FileError | UnsafeImageError | undefined> {
  const manifest = join(out, MANIFEST_FILE);
  let text: string;
  try {
    text = await Deno.readTextFile(manifest);
  } catch {
    return undefined; // an image put there by hand, or by an older build-ota
  }
  return manifestMismatch(bytes, parseManifest(text, manifest), appOffset, {
    file: join(out, FIRMWARE_FILE),
    manifest,
  });
}

/** The message for a missing `out/firmware-ota.bin`. Needs --allow-read. */
export async function missingBuild(out: string): Promise<FileError> {
  const stale = await Deno.stat(join(out, STALE_DIR, FIRMWARE_FILE)).then(() => true, () => false);
  return new FileError(missingBuildMessage(out, stale));
}

/** The build id of the build in `out`, if its manifest names one that is kept in releases/. */
export async function readPreviousBuildId(out: string): Promise<string | undefined> {
  const path = join(out, MANIFEST_FILE);
  const text = await Deno.readTextFile(path).catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const id = parseManifest(text, path).build?.id;
    const kept = id !== undefined &&
      await Deno.stat(join(out, "releases", id, FIRMWARE_FILE)).then(() => true, () => false);
    return kept ? id : undefined;
  } catch {
    return undefined;
  }
}
