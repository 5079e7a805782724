/**
 * `--verbose` (or `YAOTA_VERBOSE=1`): lines saying what the tool decided and why, as
 * esptool's `--trace` and espota's `-d` do. This module is only the registry: one sink per
 * process, set by `runTask` (lib/cli/cli.ts, which writes the lines on stderr with
 * `stderrTraceSink`, lib/cli/trace_sink.ts); modules at the edges call
 * `trace(topic, text)`, which does nothing unless a sink is set. Pure state machines (the
 * transfer engine) never call it: they hand structured records to a callback, rendered
 * at the edge.
 *
 * Never a secret: a line is never searched for one (a password that is a word, such as
 * "connected", would mask that word everywhere and so give itself away). A secret is kept
 * out by position instead: the code that writes a line never puts it in, and a place
 * that must mark one builds the line with `traceText` and `hidden()`, which show `***`
 * and never hold the secret.
 */

/** Where trace lines go: a topic ("deploy", "webrepl", "build") and the line. */
export type TraceSink = (topic: string, text: string) => void;

export const VERBOSE_ENV = "YAOTA_VERBOSE";

let sink: TraceSink | undefined;

/** Sets the process's sink (undefined turns tracing off); returns the previous one. */
export function setTraceSink(next: TraceSink | undefined): TraceSink | undefined {
  const previous = sink;
  sink = next;
  return previous;
}

/** Is `--verbose` on? Lets a caller skip building lines no one reads. */
export function tracing(): boolean {
  return sink !== undefined;
}

/** One decision, if tracing is on. `text` may be a function, called only then. */
export function trace(topic: string, text: string | (() => string)): void {
  if (!sink) return;
  sink(topic, typeof text === "function" ? text() : text);
}

/** The place of a secret in a trace line: shown as `***`. It does not hold the secret. */
export interface Hidden {
  readonly hidden: true;
}

/** Marks where a secret goes in a `traceText` line; the secret itself is dropped here. */
export function hidden(_secret?: string): Hidden {
  return { hidden: true };
}

/**
 * A trace line whose `hidden()` places show `***`, the others as they are. Pure.
 * @example
 * ```ts
 * import { hidden, traceText } from "./trace.ts";
 * if (traceText`password ${hidden("connected")} sent` !== "password *** sent") throw new Error();
 * ```
 */
export function traceText(strings: TemplateStringsArray, ...values: unknown[]): string {
  return strings.reduce((line, part, i) => {
    if (i === 0) return part;
    const value = values[i - 1];
    const shown = typeof value === "object" && value !== null && "hidden" in value
      ? "***"
      : String(value);
    return line + shown + part;
  }, "");
}

/**
 * Whether to trace: `--verbose` / `--no-verbose` if given, else `YAOTA_VERBOSE` (1, true,
 * yes or on). Pure.
 */
export function verboseWanted(flag: boolean | undefined, env: string | undefined): boolean {
  if (flag !== undefined) return flag;
  return /^(1|true|yes|on)$/i.test(env?.trim() ?? "");
}
