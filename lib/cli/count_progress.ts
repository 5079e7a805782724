/**
 * Progress of a task that asks many boards or addresses (`status`, `scan`): "12/300
 * asked, 3 found" on stderr, one line redrawn on a terminal, else a plain line per 10 %
 * or per 5 s. `countLine` is pure.
 */
import { log, logRaw, stderrIsTerminal } from "./output.ts";

/** The line: `label done/total[, extra]`. Pure. */
export function countLine(label: string, done: number, total: number, extra = ""): string {
  return `${label} ${done}/${total}${extra ? `, ${extra}` : ""}`;
}

export class CountProgress {
  readonly #label: string;
  readonly #interactive: boolean;
  readonly #now: () => number;
  #lastTenth = -1;
  #lastAt: number;
  #drawn = false;

  constructor(label: string, interactive = stderrIsTerminal(), now: () => number = Date.now) {
    this.#label = label;
    this.#interactive = interactive;
    this.#now = now;
    this.#lastAt = now();
  }

  update(done: number, total: number, extra = ""): void {
    const line = countLine(this.#label, done, total, extra);
    if (this.#interactive) {
      logRaw(`\r\x1b[K${line}`);
      this.#drawn = true;
      return;
    }
    const tenth = Math.floor((done / Math.max(1, total)) * 10);
    if (tenth !== this.#lastTenth || this.#now() - this.#lastAt >= 5000) {
      this.#lastTenth = tenth;
      this.#lastAt = this.#now();
      log(line);
    }
  }

  /** Clears the redrawn line, so the result starts on a clean one. */
  finish(): void {
    if (this.#drawn) logRaw("\r\x1b[K");
    this.#drawn = false;
  }
}
