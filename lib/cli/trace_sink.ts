/**
 * Where `--verbose` lines go: stderr, each stamped with the seconds since the start
 * (lib/trace.ts is the registry the rest of lib/ reports to).
 */
import type { TraceSink } from "../trace.ts";
import { dim, log } from "./output.ts";
import { terminalSafe } from "./terminal_text.ts";

/**
 * `[  1.234] deploy: text`: seconds since the start, the topic, the line, which may quote
 * a peer (an HTTP status line, a board's answer): one line, its control characters shown.
 * Pure.
 * @example
 * ```ts
 * import { formatTraceLine } from "./trace_sink.ts";
 * if (formatTraceLine(0.1234, "deploy", "send #1") !== "[   0.123] deploy: send #1") throw new Error();
 * ```
 */
export function formatTraceLine(seconds: number, topic: string, text: string): string {
  return `[${seconds.toFixed(3).padStart(8)}] ${topic}: ${terminalSafe(text, Infinity)}`;
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
