/**
 * Text from outside this program (what a board answers, its file names, device names from
 * the config, labels from a manifest) made safe to write to a terminal. A control
 * character would be obeyed, not shown: ESC starts sequences that clear the screen or
 * retitle the window, OSC ends in BEL, CR and LF forge lines, C1 controls act as ESC on
 * some terminals, and bidirectional overrides reorder what the eye reads. Each is written
 * as an escape the eye sees (`\x1b`, `\n`, `\u009b`, `\u202e`), so the text stays readable and
 * nothing in it is obeyed.
 */

/** C0, DEL, C1, and the Unicode format characters that reorder or break lines. */
// deno-lint-ignore no-control-regex
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** The same, but line feeds and tabs stay (for our own multi-line text). */
const UNSAFE_IN_LINES =
  // deno-lint-ignore no-control-regex
  /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** The colour sequences `output.ts` itself writes (red, green, yellow, bold, dim, reset). */
// deno-lint-ignore no-control-regex
const OWN_COLOUR = /\x1b\[(?:0|1|2|31|32|33)m/g;

const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function visible(ch: string): string {
  const named = NAMED[ch];
  if (named) return named;
  const code = ch.charCodeAt(0);
  // DEL and above as \u, which JSON reads as the same character: a JSON line stays JSON.
  return code < 0x20
    ? `\\x${code.toString(16).padStart(2, "0")}`
    : `\\u${code.toString(16).padStart(4, "0")}`;
}

/**
 * One outside string as one line of inert text: every control character (line breaks
 * too) and every bidirectional override shown as an escape. Long text is cut at
 * `maxLength` characters, saying how much was left out. Pure.
 *
 * @example
 * ```ts
 * import { terminalSafe } from "./terminal_text.ts";
 * if (terminalSafe("a\x1b]0;x\x07\nFAKE OK") !== "a\\x1b]0;x\\x07\\nFAKE OK") throw new Error();
 * ```
 */
export function terminalSafe(text: string, maxLength = 1000): string {
  const cut = text.length > maxLength
    ? `${text.slice(0, maxLength)}… (${text.length - maxLength} more characters)`
    : text;
  return cut.replace(UNSAFE, visible);
}

/**
 * Our own text, which may quote outside text, just before it is written: line feeds and
 * tabs stay, and so do our own colour sequences; any other control character is shown
 * as an escape. The last guard behind `terminalSafe`, which each quote should use. Pure.
 */
export function terminalLines(text: string): string {
  return keepingColour(text, UNSAFE_IN_LINES);
}

/**
 * Our own one-line message (a warning, an error) that may quote outside text and may be
 * coloured by us: our colours stay, every other control character (line breaks too) is
 * shown as an escape. Pure.
 */
export function terminalLine(text: string): string {
  return keepingColour(text, UNSAFE);
}

function keepingColour(text: string, unsafe: RegExp): string {
  const parts = text.split(OWN_COLOUR);
  const colours = text.match(OWN_COLOUR) ?? [];
  return parts.map((part, i) => part.replace(unsafe, visible) + (colours[i] ?? "")).join("");
}

/**
 * A copy of `value` with every string in it (at any depth) passed through `terminalSafe`:
 * for a report whose text rendering lives in a lower layer (a fleet's table). Pure.
 */
export function terminalSafeDeep<T>(value: T, maxLength = 1000): T {
  if (typeof value === "string") return terminalSafe(value, maxLength) as T;
  if (Array.isArray(value)) return value.map((v) => terminalSafeDeep(v, maxLength)) as T;
  if (value !== null && typeof value === "object" && !ArrayBuffer.isView(value)) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, terminalSafeDeep(v, maxLength)]),
    ) as T;
  }
  return value;
}
