/**
 * `JSON.parse` keeps the last of two equal keys in an object and says nothing, so a
 * config file with `"appOffset"` twice silently uses the second. This small scanner
 * finds such a key in text that `JSON.parse` accepted. Pure.
 */

export interface DuplicateKey {
  /** Where it is: `appOffset`, `devices[1].port`. */
  path: string;
  /** The lines of its first and its second appearance (1-based). */
  firstLine: number;
  line: number;
}

type Frame =
  | { kind: "object"; path: string; keys: Map<string, number>; expectKey: boolean; key?: string }
  | { kind: "array"; path: string; index: number };

function childPath(top: Frame | undefined): string {
  if (top === undefined) return "";
  if (top.kind === "array") return `${top.path}[${top.index}]`;
  return top.path ? `${top.path}.${top.key}` : (top.key ?? "");
}

/**
 * The first key that appears twice in one object of `text` (valid JSON), if any.
 * @example
 * ```ts
 * import { findDuplicateKey } from "./json_duplicates.ts";
 * const d = findDuplicateKey('{\n "a": 1,\n "a": 2\n}');
 * if (d?.path !== "a" || d.firstLine !== 2 || d.line !== 3) throw new Error();
 * ```
 */
export function findDuplicateKey(text: string): DuplicateKey | undefined {
  const stack: Frame[] = [];
  let line = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const top = stack.at(-1);
    if (c === "\n") line++;
    else if (c === "{") {
      stack.push({ kind: "object", path: childPath(top), keys: new Map(), expectKey: true });
    } else if (c === "[") stack.push({ kind: "array", path: childPath(top), index: 0 });
    else if (c === "}" || c === "]") stack.pop();
    else if (c === ",") {
      if (top?.kind === "array") top.index++;
      else if (top) top.expectKey = true;
    } else if (c === '"') {
      // JSON strings hold no raw newline: the line count stays right.
      let end = i + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      if (top?.kind === "object" && top.expectKey) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        const firstLine = top.keys.get(key);
        top.key = key;
        if (firstLine !== undefined) return { path: childPath(top), firstLine, line };
        top.keys.set(key, line);
        top.expectKey = false;
      }
      i = end;
    }
  }
  return undefined;
}
