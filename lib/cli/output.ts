/**
 * The one place that writes to the terminal. Results and `--json` go to stdout;
 * progress, logs and errors go to stderr, plain when stderr is not a terminal. Every
 * line passes `terminalLines`: a control character that a quote of outside text let
 * through is shown, not obeyed (quotes themselves use `terminalSafe`).
 */
import { terminalLine, terminalLines } from "./terminal_text.ts";
import { type Invocation, withInvocation } from "./hint.ts";

const encoder = new TextEncoder();

function useColor(): boolean {
  if (Deno.env.get("NO_COLOR")) return false;
  return Deno.stderr.isTerminal();
}

function paint(code: number, text: string): string {
  return useColor() ? `\x1b[${code}m${text}\x1b[0m` : text;
}

export const red = (text: string): string => paint(31, text);
export const green = (text: string): string => paint(32, text);
export const yellow = (text: string): string => paint(33, text);
export const bold = (text: string): string => paint(1, text);
export const dim = (text: string): string => paint(2, text);

export function stderrIsTerminal(): boolean {
  return Deno.stderr.isTerminal();
}

/** The streams whose reader has gone (`| head` closed the pipe): nothing more goes there. */
const closed = new Set<"stdout" | "stderr">();

/**
 * Writes all of `bytes`, unless the reader has gone: a closed pipe (EPIPE) is the end of
 * the reader, not an error of the task, which goes on and exits with its own outcome.
 */
export function writeAllSync(stream: "stdout" | "stderr", bytes: Uint8Array): void {
  if (closed.has(stream)) return;
  const target = stream === "stdout" ? Deno.stdout : Deno.stderr;
  try {
    for (let at = 0; at < bytes.length;) at += target.writeSync(bytes.subarray(at));
  } catch (e) {
    if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
    closed.add(stream);
  }
}

/** Whether stdout's reader has gone (a closed pipe). */
export function stdoutClosed(): boolean {
  return closed.has("stdout");
}

let invocation: Invocation | undefined;

/**
 * How this run was started (`runTask` sets it): from then on, every command a text line
 * suggests (`'deno task NAME …'`, quoted) is printed as this run would type it, with its
 * program and flags (`hint.ts`), whichever module wrote the line. `--json` is left as it is.
 */
export function setInvocation(inv: Invocation): void {
  invocation = inv;
}

const asTyped = (line: string) => invocation ? withInvocation(line, invocation) : line;

/** A line on stderr (logs, progress in plain mode, notes). */
export function log(line = ""): void {
  writeAllSync("stderr", encoder.encode(terminalLines(asTyped(line)) + "\n"));
}

/** Raw text on stderr, no newline (terminal redraws). */
export function logRaw(text: string): void {
  writeAllSync("stderr", encoder.encode(text));
}

/** A warning: one line, whatever it quotes. */
export function warn(line: string): void {
  log(yellow("warning: ") + terminalLine(line));
}

/** An error: one line, whatever it quotes (`lines`: our own multi-line report). */
export function fail(line: string, options: { lines?: boolean } = {}): void {
  log(red("error: " + (options.lines ? line : terminalLine(line))));
}

/** A result line on stdout. */
export function print(line = ""): void {
  writeAllSync("stdout", encoder.encode(terminalLines(asTyped(line)) + "\n"));
}

/** One JSON object on stdout. */
export function printJson(value: unknown): void {
  // JSON.stringify escapes C0 controls but not DEL, C1, U+2028/9 or the bidi overrides,
  // which terminalLines shows as \u escapes: still valid JSON, the same value.
  writeAllSync("stdout", encoder.encode(terminalLines(JSON.stringify(value)) + "\n"));
}

/** Pure unit helpers, here too for the tasks that print them. */
export { formatBytes, formatSeconds } from "../_units.ts";

export { terminalSafe } from "./terminal_text.ts";
