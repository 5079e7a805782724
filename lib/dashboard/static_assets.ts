/**
 * The page's files, shipped in the repository beside this module (`static/`): plain HTML,
 * CSS and JavaScript, nothing to build and nothing fetched from elsewhere. Read from the
 * checkout, from a `deno compile` binary (which includes the folder) or from the URL a
 * `deno install` ran from.
 */
import { readAssetBytes } from "../_fs.ts";

/**
 * The files the page is made of, and their types: nothing else is served. A Map, so that a
 * name such as `constructor` or `__proto__` is no file.
 */
export const ASSETS: ReadonlyMap<string, string> = new Map([
  ["index.html", "text/html; charset=utf-8"],
  ["app.js", "text/javascript; charset=utf-8"],
  ["style.css", "text/css; charset=utf-8"],
]);

/** The type of the page's file `name`, or undefined when it is not one of them. */
export function assetType(name: string): string | undefined {
  return ASSETS.get(name);
}

/** Reads one of `ASSETS` by name. */
export type AssetReader = (name: string) => Promise<Uint8Array<ArrayBuffer>>;

/** The reader for the files beside this module. Needs `--allow-read` (or `--allow-net`). */
export const readStaticAsset: AssetReader = async (name) => {
  if (!ASSETS.has(name)) throw new Error(`not a dashboard file: '${name}'`);
  return await readAssetBytes(new URL(`./static/${name}`, import.meta.url));
};
