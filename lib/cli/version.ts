/**
 * `yaota --version`: the version in deno.json and, when known, the git commit it was
 * built from. A compiled binary has the commit written in at build time
 * (`tasks/compile.ts`); run from a checkout (`deno task`, or `deno install` of a local
 * path) it asks git; installed from a URL it has none, and says nothing about it.
 */
import denoJson from "../../deno.json" with { type: "json" };
import { fromFileUrl } from "../_paths.ts";

/** The release version, from deno.json's "version" (one place to bump). */
export const VERSION: string = denoJson.version;

export interface BuildInfo {
  /** The git commit (short hash, `-dirty` if the tree had changes), when known. */
  commit?: string;
}

/**
 * The `--version` line. Pure.
 * @example
 * ```ts
 * import { versionLine } from "./version.ts";
 * const line = versionLine({ commit: "0123456789ab" }, "2.1.4", "x86_64-unknown-linux-gnu");
 * if (!line.includes("(commit 0123456789ab, deno 2.1.4")) throw new Error(line);
 * ```
 */
export function versionLine(info: BuildInfo, deno: string, target: string): string {
  const parts = [...(info.commit ? [`commit ${info.commit}`] : []), `deno ${deno}`, target];
  return `yaota ${VERSION} (${parts.join(", ")})`;
}

/**
 * The commit of the checkout `moduleUrl` lies in: `git rev-parse --short=12 HEAD`, with
 * `-dirty` when tracked files changed. Undefined for a URL install, a compiled binary
 * (its `BuildInfo` says it) or a machine without git. Needs --allow-run=git.
 */
export async function checkoutCommit(moduleUrl: string): Promise<string | undefined> {
  if (!moduleUrl.startsWith("file:") || Deno.build.standalone) return undefined;
  const dir = fromFileUrl(new URL(".", moduleUrl));
  const git = async (...args: string[]) => {
    try {
      const out = await new Deno.Command("git", {
        args: ["-C", dir, ...args],
        stdin: "null",
        stdout: "piped",
        stderr: "null",
      }).output();
      return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
    } catch {
      return undefined; // no git on PATH
    }
  };
  const commit = await git("rev-parse", "--short=12", "HEAD");
  if (!commit) return undefined;
  const changes = await git("status", "--porcelain", "--untracked-files=no");
  return changes ? `${commit}-dirty` : commit;
}
