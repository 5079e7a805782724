/**
 * How the transfer engine builds its trace records (`trace_record.ts`): only when someone
 * traces, each text made on demand (a `Why`), the records made while a reply is handled
 * held back to follow the reply's own record, and a pacing record only when the model
 * changed enough to matter (`pacingChange`).
 */
import type { PacingSnapshot, SendKind, TransferTrace } from "./trace_record.ts";
import { pacingChange } from "./transfer_trace.ts";

/** Why a record says what it says: built only when someone traces. */
export type Why = () => string;

export class EngineTrace {
  /** Someone traces: records are built. */
  readonly on: boolean;
  readonly #sink: (record: TransferTrace) => void;
  readonly #clock: () => number;
  /** What the reply being handled meant (set by the phase that handles it). */
  #meaning: string | undefined;
  /** Records made while a reply is handled: they follow the reply's own record. */
  #held: TransferTrace[] | undefined;
  #tracedPacing: PacingSnapshot | undefined;

  /** `clock`: the engine's time, stamped on each record. */
  constructor(sink: ((record: TransferTrace) => void) | undefined, clock: () => number) {
    this.on = sink !== undefined;
    this.#sink = sink ?? (() => {});
    this.#clock = clock;
  }

  #emit(record: TransferTrace): void {
    if (this.#held) this.#held.push(record);
    else this.#sink(record);
  }

  step(text: Why): void {
    if (this.on) this.#emit({ type: "step", at: this.#clock(), text: text() });
  }

  timeout(what: Why, then: Why): void {
    if (this.on) this.#emit({ type: "timeout", at: this.#clock(), what: what(), then: then() });
  }

  send(seq: number, offset: number, len: number, kind: SendKind, why: Why): void {
    if (this.on) {
      this.#emit({ type: "send", at: this.#clock(), seq, offset, len, kind, why: why() });
    }
  }

  end(seq: number, reason: "final" | "cleanup", why: Why): void {
    if (this.on) this.#emit({ type: "end", at: this.#clock(), seq, reason, why: why() });
  }

  /** A reply is being handled: what is recorded until `endReply` follows its record. */
  beginReply(): void {
    this.#meaning = undefined;
    if (this.on) this.#held = [];
  }

  /** Says what the reply being handled meant. */
  means(text: Why): void {
    if (this.on) this.#meaning = text();
  }

  /** The reply's record (given what it was said to mean), then those held back. */
  endReply(record: (meaning: string | undefined) => TransferTrace): void {
    if (!this.on) return;
    const held = this.#held ?? [];
    this.#held = undefined;
    this.#emit(record(this.#meaning));
    for (const r of held) this.#emit(r);
  }

  /** A pacing record when the model changed enough to matter. */
  pacing(snapshot: () => PacingSnapshot): void {
    if (!this.on) return;
    const now = snapshot();
    const why = pacingChange(this.#tracedPacing, now);
    if (why === undefined) return;
    this.#tracedPacing = now;
    this.#emit({ type: "pacing", at: this.#clock(), why, pacing: now });
  }
}
