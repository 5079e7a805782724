/**
 * Files a build writes into someone else's tree (the MicroPython or yaota8266 checkout):
 * templates filled in, and edits planned first (what changes, line by line), applied
 * second, keeping the tree's original once as `FILE.orig`, and described for the log or
 * the dry run.
 */
import { relative } from "node:path";

/**
 * Replaces every `{{NAME}}` in `template`. Pure.
 * @throws {Error} If the template names a value that is not given (a bug in the template).
 */
export function renderTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`template placeholder {{${name}}} has no value`);
    return value;
  });
}

/** A file the build writes into someone else's tree. */
export interface FileEdit {
  path: string;
  text: string;
  /** Its content now; undefined if it does not exist. */
  before?: string;
  changed: boolean;
  /** Set when this edit keeps the original: the first edit of an existing file. */
  backup?: string;
  /** The changed lines, "- old" / "+ new". */
  summary: string[];
}

/** The file's text, or undefined if there is no such file. */
export async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

const isComment = (line: string) => /^\s*(\/\/|\/\*|\*)/.test(line);
const clip = (line: string, width = 96) =>
  line.length > width ? line.slice(0, width - 1) + "…" : line;

/**
 * Lines only in `before` ("- …") and only in `after` ("+ …"), leaving out blank and
 * comment lines, clipped for the terminal. Pure.
 */
export function changedLines(before: string, after: string, max = 12): string[] {
  const count = (lines: string[]) => {
    const m = new Map<string, number>();
    for (const l of lines) m.set(l, (m.get(l) ?? 0) + 1);
    return m;
  };
  const a = before.split("\n").map((l) => l.trim()).filter((l) => l && !isComment(l));
  const b = after.split("\n").map((l) => l.trim()).filter((l) => l && !isComment(l));
  const inA = count(a);
  const inB = count(b);
  const removed = a.filter((l) => (inB.get(l) ?? 0) < (inA.get(l) ?? 0));
  const added = b.filter((l) => (inA.get(l) ?? 0) < (inB.get(l) ?? 0));
  const out = [...new Set(removed)].map((l) => clip(`- ${l}`))
    .concat([...new Set(added)].map((l) => clip(`+ ${l}`)));
  if (out.length === 0 && before !== after) return ["(comments only)"];
  return out.length > max ? [...out.slice(0, max), `… and ${out.length - max} more`] : out;
}

/** What writing `text` to `path` would change. Reads only. */
export async function planFileEdit(path: string, text: string): Promise<FileEdit> {
  const before = await readIfExists(path);
  const changed = before !== text;
  const backupPath = `${path}.orig`;
  const keepOriginal = changed && before !== undefined &&
    (await readIfExists(backupPath)) === undefined;
  return {
    path,
    text,
    before,
    changed,
    backup: keepOriginal ? backupPath : undefined,
    summary: changed ? changedLines(before ?? "", text) : [],
  };
}

/** Writes the edit (saving the original first, once). Does nothing if nothing changes. */
export async function applyFileEdit(edit: FileEdit): Promise<void> {
  if (!edit.changed) return;
  if (edit.backup && edit.before !== undefined) {
    await Deno.writeTextFile(edit.backup, edit.before, { createNew: true });
  }
  await Deno.writeTextFile(edit.path, edit.text);
}

/** One line per file change (and its summary), for the log or the dry run. */
export function describeFileEdit(
  edit: FileEdit,
  root: string,
  dryRun: boolean,
  label = "",
  detail = "",
): string[] {
  const name = label + relative(root, edit.path);
  if (!edit.changed) return [`${name}: up to date${detail ? ` (${detail})` : ""}`];
  const lines = [
    `${dryRun ? "would write" : "wrote"} ${name}${
      detail ? `: ${detail}` : edit.before === undefined ? " (new)" : ""
    }`,
    ...edit.summary.map((l) => `    ${l}`),
  ];
  if (edit.backup) {
    lines.push(
      `  ${dryRun ? "would keep" : "kept"} the original as ${relative(root, edit.backup)}`,
    );
  }
  return lines;
}
