/**
 * Progress of a fleet deploy on stderr. On a terminal: one dax progress bar per device
 * being updated (dax draws several at once), and a line above them as each finishes.
 * Otherwise: plain lines, each prefixed with the device's name, at most one per device
 * per quarter of the image or per 5 s (`formatFleetLine` is pure).
 */
import $ from "dax";
import type { DeviceOutcome, FleetDevice, FleetProgressSink } from "../deploy/fleet.ts";
import type { DeviceResult } from "../deploy/events.ts";
import { log, red, stderrIsTerminal } from "./output.ts";
import { formatProgress, formatTransfer, type ProgressState } from "./progress.ts";
import { tracing } from "../trace.ts";
import { terminalSafe } from "./terminal_text.ts";

export interface FleetProgressOptions {
  /** Bars (terminal) or plain lines; default: whether stderr is a terminal. */
  interactive?: boolean;
  /** The image's size, for the bars before the first update. */
  size?: number;
  /** Where plain lines go (default: stderr). */
  write?: (line: string) => void;
  /** Plain mode: a line per this share of the image (default 25 %)... */
  stepPercent?: number;
  /** ...or per this many ms, whichever comes first (default 5000). */
  intervalMs?: number;
}

/** A plain progress line: the name padded to `width`, then the transfer's state. */
export function formatFleetLine(name: string, width: number, text: string): string {
  return `${terminalSafe(name).padEnd(width)}  ${terminalSafe(text)}`;
}

/**
 * The one-line result of a device, for the line printed when it finishes. Its versions,
 * builds and errors quote the board: `formatFleetLine` makes them inert.
 */
export function formatOutcome(outcome: DeviceOutcome & { result?: DeviceResult }): string {
  if (outcome.skipped !== undefined) return `skipped: ${outcome.skipped}`;
  if (outcome.result === "not-attempted") return outcome.error ?? "not attempted";
  if (!outcome.ok) {
    return `failed: ${outcome.error ?? "unknown error"}` +
      (outcome.note ? ` (${outcome.note})` : "");
  }
  const parts = [
    `done: ${
      formatTransfer({
        bytes: outcome.bytes ?? 0,
        seconds: outcome.seconds ?? 0,
        kibps: outcome.kibps ?? 0,
      })
    }`,
    `${outcome.retransmits ?? 0} retransmissions`,
  ];
  if (outcome.versionBefore || outcome.versionAfter) {
    parts.push(`${outcome.versionBefore ?? "?"} → ${outcome.versionAfter ?? "?"}`);
  }
  if (outcome.buildBefore || outcome.buildAfter) {
    parts.push(`build ${outcome.buildBefore ?? "?"} → ${outcome.buildAfter ?? "?"}`);
  }
  if (outcome.attempts !== undefined && outcome.attempts > 1) {
    parts.push(`after ${outcome.attempts} attempts`);
  }
  if (outcome.note) parts.push(outcome.note);
  return parts.join(", ");
}

interface Line {
  bar?: ReturnType<typeof $.progress>;
  state?: ProgressState;
  note: string;
  lastStep: number;
  lastAt: number;
}

export class FleetProgress implements FleetProgressSink {
  readonly #interactive: boolean;
  readonly #write: (line: string) => void;
  readonly #step: number;
  readonly #interval: number;
  #width: number;
  #size: number | undefined;
  readonly #lines = new Map<string, Line>();

  /** `devices` and `options.size` may also come later, from the deploy (`begin`). */
  constructor(devices: Pick<FleetDevice, "name">[] = [], options: FleetProgressOptions = {}) {
    // With --verbose, plain lines between the trace lines (redrawn bars would be torn up).
    this.#interactive = options.interactive ?? (stderrIsTerminal() && !tracing());
    this.#write = options.write ?? ((line) => log(line));
    this.#step = options.stepPercent ?? 25;
    this.#interval = options.intervalMs ?? 5000;
    this.#width = Math.max(0, ...devices.map((d) => terminalSafe(d.name).length));
    this.#size = options.size;
  }

  /** The devices to come (their names set the column width) and the image's size. */
  begin(devices: Pick<FleetDevice, "name">[], size: number): void {
    this.#width = Math.max(this.#width, ...devices.map((d) => terminalSafe(d.name).length));
    this.#size ??= size;
  }

  /** A line printed above the bars (or plainly). */
  #print(line: string, failed = false): void {
    // With bars on screen, dax's logger clears them, prints, and draws them again.
    if (this.#interactive) $.log(failed ? red(line) : line);
    else this.#write(line);
  }

  #prefixed(name: string, text: string): string {
    return formatFleetLine(name, this.#width, text);
  }

  /** The device's deploy starts. */
  start(device: FleetDevice): void {
    const line: Line = { note: "", lastStep: -1, lastAt: -Infinity };
    this.#lines.set(device.name, line);
    if (this.#interactive) {
      line.bar = $.progress({
        prefix: terminalSafe(device.name),
        message: terminalSafe(`${device.ip}:${device.port}`),
        ...(this.#size ? { length: this.#size } : {}),
      }).kind("bytes");
    } else {
      this.#write(this.#prefixed(device.name, `sending to ${device.ip}:${device.port}`));
    }
  }

  update(name: string, state: ProgressState): void {
    const line = this.#lines.get(name);
    if (!line) return;
    line.state = state;
    if (line.bar) {
      line.bar.length(Math.max(1, state.size)).position(state.confirmed);
      line.bar.message(
        line.note ? `${line.note} · ${formatProgress(state)}` : formatProgress(state),
      );
      return;
    }
    const step = Math.floor((state.confirmed / Math.max(1, state.size)) * 100 / this.#step);
    if (step !== line.lastStep || state.elapsedMs - line.lastAt >= this.#interval) {
      line.lastStep = step;
      line.lastAt = state.elapsedMs;
      this.#write(this.#prefixed(name, formatProgress(state)));
    }
  }

  /** What is happening on that device (the probe's verdict, a recovery, the boot check). */
  note(name: string, message: string): void {
    const line = this.#lines.get(name);
    if (!line) return;
    message = terminalSafe(message);
    line.note = message;
    if (line.bar) {
      if (line.state) this.update(name, line.state);
      else line.bar.message(message);
    } else {
      this.#write(this.#prefixed(name, message));
    }
  }

  /** The device is done: its bar goes, a result line is printed. */
  finish(name: string, outcome: DeviceOutcome & { result?: DeviceResult }): void {
    const line = this.#lines.get(name);
    line?.bar?.finish();
    this.#lines.delete(name);
    this.#print(this.#prefixed(name, formatOutcome(outcome)), !outcome.ok);
  }

  /** Removes any bar left (restoring the terminal). */
  close(): void {
    for (const line of this.#lines.values()) line.bar?.finish();
    this.#lines.clear();
  }
}
