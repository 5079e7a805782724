/**
 * Which state of the MicroPython tree a build is made from, for the build id: its git
 * commit and, if the tree differs from it, a hash of the differences (`git diff HEAD`,
 * the untracked files git does not ignore, the submodules' commits). The files build-ota
 * itself writes into the tree (the linker script, the frozen modules and their record)
 * are left out: they are inputs of the id in their own right. A tree that is not a git
 * checkout (or a machine without git) has no state: the id then covers the tree's
 * version, not its sources.
 */
import { relative } from "node:path";
import { createHash } from "node:crypto";

export interface TreeState {
  /** `git rev-parse HEAD`. */
  commit: string;
  /** SHA-256 of the changes against the commit, if there are any. */
  changes?: string;
}

async function git(root: string, args: string[]): Promise<Uint8Array | undefined> {
  try {
    const out = await new Deno.Command("git", {
      args: ["-C", root, ...args],
      stdout: "piped",
      stderr: "null",
      stdin: "null",
      env: { GIT_OPTIONAL_LOCKS: "0" },
    }).output();
    return out.success ? out.stdout : undefined;
  } catch {
    return undefined; // git is not installed
  }
}

/**
 * The git state of the tree at `root`, leaving out `managed` (absolute paths of the files
 * build-ota writes there); undefined if it is not a git checkout. Needs `--allow-run=git`
 * and `--allow-read`.
 */
export async function readTreeState(
  root: string,
  managed: readonly string[],
): Promise<TreeState | undefined> {
  const head = await git(root, ["rev-parse", "--verify", "HEAD"]);
  if (!head) return undefined;
  const commit = new TextDecoder().decode(head).trim();
  const pathspec = ["--", ".", ...managed.map((p) => `:(exclude)${relative(root, p)}`)];
  const status = await git(root, ["status", "--porcelain=v1", "-z", ...pathspec]);
  if (status === undefined) return undefined;
  if (status.length === 0) return { commit };
  const hash = createHash("sha256");
  hash.update(await git(root, ["diff", "HEAD", "--binary", ...pathspec]) ?? new Uint8Array());
  const untracked = await git(root, [
    "ls-files",
    "--others",
    "--exclude-standard",
    "-z",
    ...pathspec,
  ]);
  for (const path of new TextDecoder().decode(untracked ?? new Uint8Array()).split("\0")) {
    if (path === "") continue;
    hash.update(`\0${path}\0`);
    hash.update(await Deno.readFile(`${root}/${path}`).catch(() => new Uint8Array()));
  }
  hash.update(await git(root, ["submodule", "status", "--recursive"]) ?? new Uint8Array());
  return { commit, changes: hash.digest("hex") };
}
