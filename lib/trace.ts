/**
 * `--verbose` (or `YAOTA_VERBOSE=1`): timestamped lines on stderr saying what the tool
 * decided and why, as esptool's `--trace` and espota's `-d` do. One sink per process,
 * set by `runTask` (lib/cli.ts); modules at the edges call `trace(topic, text)`, which
 * does nothing unless the sink is set. Pure state machines (the transfer engine) never
 * call it: they hand structured records to a callback, rendered here at the edge.
 *
 * Never a secret: a secret registered with `hideInTrace` (the WebREPL password, as soon as
 * a client holds it) is replaced by `***` in every line, should one ever carry it.
 */
import { dim, log } from "./cli/output.ts";

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

/** `[  1.234] deploy: text`: seconds since the start, the topic, the line. Pure. */
export function formatTraceLine(seconds: number, topic: string, text: string): string {
  return `[${seconds.toFixed(3).padStart(8)}] ${topic}: ${text}`;
}

/**
 * The sink `--verbose` uses: a line on stderr per call, stamped with the seconds since
 * the process started (`performance.now()`), the stamp dimmed only on a colour terminal.
 */
export function stderrTraceSink(clock: () => number = () => performance.now()): TraceSink {
  return (topic, text) => {
    const line = formatTraceLine(clock() / 1000, topic, text);
    const stamp = line.indexOf("]") + 1;
    log(dim(line.slice(0, stamp)) + line.slice(stamp));
  };
}

/**
 * Whether to trace: `--verbose` / `--no-verbose` if given, else `YAOTA_VERBOSE` (1, true,
 * yes or on). Pure.
 */
export function verboseWanted(flag: boolean | undefined, env: string | undefined): boolean {
  if (flag !== undefined) return flag;
  return /^(1|true|yes|on)$/i.test(env?.trim() ?? "");
}
