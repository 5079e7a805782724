/**
 * Progress of a transfer on stderr: a dax progress bar on a terminal, plain lines
 * otherwise (as dax does). `formatProgress` is pure and tested by string.
 */
import $ from "dax";
import { formatBytes, formatSeconds, log, stderrIsTerminal } from "./output.ts";
import { terminalSafe } from "./terminal_text.ts";
import { Countdown } from "./countdown.ts";

export interface ProgressState {
  confirmed: number;
  size: number;
  retransmits: number;
  elapsedMs: number;
}

export function formatProgress(s: ProgressState): string {
  const pct = s.size ? Math.floor((s.confirmed / s.size) * 100) : 0;
  const rate = s.elapsedMs > 0 ? s.confirmed / 1024 / (s.elapsedMs / 1000) : 0;
  const eta = rate > 0 ? (s.size - s.confirmed) / 1024 / rate : Infinity;
  return `${String(pct).padStart(3)}% ${formatBytes(s.confirmed)}/${formatBytes(s.size)}` +
    ` ${rate.toFixed(1)} KiB/s ETA ${formatSeconds(eta)} retx ${s.retransmits}`;
}

/** "40.0 KiB in 0.4 s, 106.2 KiB/s": a finished transfer, for one board's line or a fleet row's. */
export function formatTransfer(t: { bytes: number; seconds: number; kibps: number }): string {
  return `${formatBytes(t.bytes)} in ${t.seconds.toFixed(1)} s, ${t.kibps.toFixed(1)} KiB/s`;
}

export class ProgressDisplay {
  readonly label: string;
  #bar: ReturnType<typeof $.progress> | undefined;
  #lastLine = 0;
  #lastPct = -1;
  #note = "";
  #state: ProgressState | undefined;
  #countdown = new Countdown((line) => this.#setNote(line));

  constructor(label: string, size: number, interactive = stderrIsTerminal()) {
    this.label = terminalSafe(label);
    if (interactive) {
      this.#bar = $.progress(this.label, { length: size });
      this.#bar.kind("bytes");
    }
  }

  update(state: ProgressState): void {
    this.#state = state;
    if (this.#bar) {
      this.#bar.position(state.confirmed);
      this.#bar.message(
        this.#note ? `${this.#note} · ${formatProgress(state)}` : formatProgress(state),
      );
      return;
    }
    // Plain mode: a line per 10 % or per 5 s, whichever comes first.
    const pct = Math.floor((state.confirmed / Math.max(1, state.size)) * 10);
    if (pct !== this.#lastPct || state.elapsedMs - this.#lastLine > 5000) {
      this.#lastPct = pct;
      this.#lastLine = state.elapsedMs;
      log(`${this.label}: ${formatProgress(state)}`);
    }
  }

  /**
   * A wait of known length (the boot check): on a terminal the note counts down each
   * second; plain, one line saying how long at most.
   */
  countdown(message: string, ms: number): void {
    if (!this.#bar) {
      log(`${this.label}: ${message} (up to ${formatSeconds(ms / 1000)})`);
      return;
    }
    this.#countdown.start(message, ms);
  }

  /** Says what is happening (a recovery, the boot check). */
  note(message: string): void {
    this.#countdown.stop();
    this.#setNote(message);
  }

  #setNote(message: string): void {
    // It may quote the board (a version, an error it printed).
    message = terminalSafe(message);
    this.#note = message;
    if (this.#bar) {
      if (this.#state) this.update(this.#state);
      else this.#bar.message(message);
    } else {
      log(`${this.label}: ${message}`);
    }
  }

  /** Removes the bar (restoring the terminal). */
  finish(): void {
    this.#countdown.stop();
    this.#bar?.finish();
    this.#bar = undefined;
  }
}
