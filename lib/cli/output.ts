/**
 * The one place that writes to the terminal. Results and `--json` go to stdout;
 * progress, logs and errors go to stderr, plain when stderr is not a terminal.
 */

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

/** A line on stderr (logs, progress in plain mode, notes). */
export function log(line = ""): void {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
}

/** Raw text on stderr, no newline (terminal redraws). */
export function logRaw(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text));
}

export function warn(line: string): void {
  log(yellow("warning: ") + line);
}

export function fail(line: string): void {
  log(red("error: " + line));
}

/** A result line on stdout. */
export function print(line = ""): void {
  Deno.stdout.writeSync(encoder.encode(line + "\n"));
}

/** One JSON object on stdout. */
export function printJson(value: unknown): void {
  print(JSON.stringify(value));
}

/** Pure unit helpers, here too for the tasks that print them. */
export { formatBytes, formatSeconds } from "../_units.ts";
