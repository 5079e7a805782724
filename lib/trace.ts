/**
 * `--verbose` (or `YAOTA_VERBOSE=1`): lines saying what the tool decided and why, as
 * esptool's `--trace` and espota's `-d` do. This module is only the registry: one sink per
 * process, set by `runTask` (lib/cli/cli.ts, which writes the lines on stderr with
 * `stderrTraceSink`, lib/cli/trace_sink.ts); modules at the edges call
 * `trace(topic, text)`, which does nothing unless a sink is set. Pure state machines (the
 * transfer engine) never call it: they hand structured records to a callback, rendered
 * at the edge.
 *
 * Never a secret: a secret registered with `hideInTrace` (the WebREPL password, as soon as
 * a client holds it) is replaced by `***` in every line, should one ever carry it.
 */

/** Where trace lines go: a topic ("deploy", "webrepl", "build") and the line. */
export type TraceSink = (topic: string, text: string) => void;

export const VERBOSE_ENV = "YAOTA_VERBOSE";

let sink: TraceSink | undefined;
const secrets = new Set<string>();

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
  sink(topic, redact(typeof text === "function" ? text() : text));
}

/** Never shows `secret` in a trace line (a password a module is about to use). */
export function hideInTrace(secret: string): void {
  if (secret.length > 0) secrets.add(secret);
}

function redact(text: string): string {
  let out = text;
  for (const s of secrets) out = out.replaceAll(s, "***");
  return out;
}

/**
 * Whether to trace: `--verbose` / `--no-verbose` if given, else `YAOTA_VERBOSE` (1, true,
 * yes or on). Pure.
 */
export function verboseWanted(flag: boolean | undefined, env: string | undefined): boolean {
  if (flag !== undefined) return flag;
  return /^(1|true|yes|on)$/i.test(env?.trim() ?? "");
}
