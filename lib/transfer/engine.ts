/**
 * The transfer engine: a state machine with no I/O. Events (`start`, `onReply`,
 * `onTimer`, `onAppRunning`) and the time go in; what to send comes out as actions. The
 * driver (`send_firmware.ts`) signs and sends; tests drive it with a fake clock.
 *
 * Rules it keeps (docs/device.md):
 * - replies are matched by offset and length; the device accepts strictly in order, so a
 *   reply confirms every byte before it;
 * - no blind window ("Re-entrancy"): the next packet is aimed to arrive just after the
 *   device has begun checking the previous one (see `pacing.ts`);
 * - a block never straddles a 4 KiB sector (the device drops a packet that overflows its
 *   buffer), so a packet's length is cut at the next multiple of the block size;
 * - THE END PACKET IS SENT ONLY AFTER EVERY BYTE BEFORE IT WAS CONFIRMED IN THE CURRENT
 *   DEVICE SESSION ("Session restarts keep stale bytes"): at the end of a complete
 *   transfer, again only after the device re-confirms it is still in that session, and
 *   for a clean-up only right after a packet at offset 0 was confirmed. One method makes
 *   end packets, `EngineCore.sendEnd`, and it checks this (`endPacketAllowed`).
 *
 * The phases, one module each, share the state in `engine_core.ts`:
 *
 *   probe/resolve (`phase_probe.ts`) → transfer (`phase_data.ts`, losses in `data_loss.ts`)
 *     → ending → bootcheck (`phase_ending.ts`)
 *   with clean-up (`phase_cleanup.ts`) from probe or transfer back to transfer, and from
 *   a failed boot check back to transfer once more.
 *
 * This class routes each event to the phase that holds the engine, and keeps the limit
 * on silence common to all of them.
 */
import { type PacingModel, preciseSend } from "./pacing.ts";
import {
  EngineCore,
  type Handover,
  type Phase,
  type PhaseHandler,
  roundTrip,
} from "./engine_core.ts";
import { ProbePhase } from "./phase_probe.ts";
import { DataPhase } from "./phase_data.ts";
import { CleanupPhase } from "./phase_cleanup.ts";
import { EndingPhase } from "./phase_ending.ts";
import type { TransferAction, TransferOptions } from "./types.ts";
import type { Reply } from "../format/packet.ts";

export type { PacingSnapshot, SendKind, TransferTrace } from "./trace_record.ts";
export type { TransferAction, TransferFailure, TransferOptions, TransferSummary } from "./types.ts";

export class TransferEngine {
  readonly #c: EngineCore;
  readonly #probe: ProbePhase;
  readonly #data: DataPhase;
  readonly #cleanup: CleanupPhase;
  readonly #ending: EndingPhase;
  readonly #handlers: Record<Exclude<Phase, "finished">, PhaseHandler>;

  /** @throws {RangeError} If `options.size` is not above 0. */
  constructor(options: TransferOptions) {
    this.#c = new EngineCore(options);
    const handover: Handover = {
      enterTransfer: (confirmed) => this.#data.enter(confirmed),
      probeAt: (offset) => this.#probe.restartAt(offset),
      startCleanup: (confirmedAtZero, message) => {
        this.#data.forgetSessionProbes();
        this.#cleanup.start(confirmedAtZero, message);
      },
      startEnding: () => this.#ending.start(),
    };
    this.#probe = new ProbePhase(this.#c, handover);
    this.#data = new DataPhase(this.#c, handover);
    this.#cleanup = new CleanupPhase(this.#c, handover);
    this.#ending = new EndingPhase(this.#c, handover);
    this.#handlers = {
      probe: this.#probe,
      resolve: this.#probe,
      transfer: this.#data,
      cleanup: this.#cleanup,
      ending: this.#ending,
      bootcheck: this.#ending,
    };
  }

  get options(): Required<TransferOptions> {
    return this.#c.options;
  }
  get pacing(): PacingModel {
    return this.#c.pacing;
  }
  get phase(): Phase {
    return this.#c.phase;
  }
  /** Bytes confirmed in the current device session. */
  get confirmed(): number {
    return this.#c.confirmed;
  }
  get block(): number {
    return this.#c.block;
  }
  get retransmits(): number {
    return this.#c.retransmits;
  }
  get packetsSent(): number {
    return this.#c.packetsSent;
  }
  get attempts(): number {
    return this.#c.attempts;
  }
  get recoveries(): number {
    return this.#c.recoveries;
  }
  /** A reply has confirmed a packet of this transfer. */
  get everAnswered(): boolean {
    return this.#c.everAnswered;
  }
  get lastAnswerAt(): number {
    return this.#c.lastAnswerAt;
  }

  /** The phase that holds the engine, until it finishes. */
  get #handler(): PhaseHandler | undefined {
    const phase = this.#c.phase;
    return phase === "finished" ? undefined : this.#handlers[phase];
  }

  start(now: number): TransferAction[] {
    const c = this.#c;
    c.now = now;
    c.startedAt = now;
    c.lastAnswerAt = now;
    c.trace.step(() =>
      `${c.options.size} bytes to send; block sizes ${c.options.blocks.join(", ")}; ` +
      (c.options.pace ? "paced once calibrated" : "stop-and-wait (--pace off)") +
      `; the device may stay silent ${c.silenceLimitMs() / 1000} s`
    );
    if (c.options.blocks.length > 1) c.status("probing the largest block size the link passes");
    this.#probe.start();
    return c.flush();
  }

  /**
   * The driver tells when a datagram really left (after signing it, if it had to): round
   * trips are measured from there.
   */
  markSent(seq: number, at: number, sendMs = 0): void {
    this.#c.markSent(seq, at, sendMs);
    if (this.#c.phase === "probe" || this.#c.phase === "resolve") this.#probe.sentLate(seq, at);
  }

  /**
   * The earliest the engine may send again on its own: a paced packet's time, or the next
   * reply due (which may release one). Now, when it may send at any moment.
   */
  quietUntil(): number {
    const c = this.#c;
    return c.phase === "transfer" ? this.#data.quietUntil() : c.now;
  }

  /** The time `onTimer` should next be called, if any. */
  nextTimer(): number | undefined {
    if (this.#c.finished) return undefined;
    const deadlines = this.#handler?.deadlines() ?? [];
    return Math.min(
      this.#c.lastAnswerAt + this.#c.silenceLimitMs(),
      this.#c.startedAt + this.#c.overallLimitMs(),
      ...deadlines,
    );
  }

  onTimer(now: number): TransferAction[] {
    const c = this.#c;
    c.now = now;
    if (c.finished) return [];
    const silent = now - c.lastAnswerAt;
    // After the end packet the device reboots without a word: the ending has its own limits.
    const bounded = c.phase !== "ending" && c.phase !== "bootcheck";
    if (bounded && silent >= c.silenceLimitMs()) {
      c.trace.timeout(
        () => `no answer for ${(silent / 1000).toFixed(1)} s (the limit in this phase)`,
        () => "giving up: no end packet is sent",
      );
      c.fail(
        c.everAnswered
          ? {
            kind: "stopped-answering",
            confirmed: c.confirmed,
            silentMs: silent,
            unmatched: c.unmatched,
          }
          : { kind: "no-answer", unmatched: c.unmatched },
      );
      return c.flush();
    }
    if (now - c.startedAt >= c.overallLimitMs()) {
      c.trace.timeout(
        () => `${((now - c.startedAt) / 1000).toFixed(1)} s in all: the bound for this image`,
        () => "giving up: no end packet is sent",
      );
      c.fail({
        kind: "overall-limit",
        confirmed: c.confirmed,
        limitMs: c.overallLimitMs(),
        unmatched: c.unmatched,
      });
      return c.flush();
    }
    this.#handler?.onTimer();
    return c.flush();
  }

  onReply(now: number, reply: Reply): TransferAction[] {
    const c = this.#c;
    c.now = now;
    if (c.finished) return [];
    const exact = c.receive(reply);
    c.trace.beginReply();
    try {
      this.#handler?.onReply(reply, exact);
      this.#upgradeBlock();
    } finally {
      c.handled();
    }
    c.trace.endReply((meaning) => ({
      type: "reply",
      at: now,
      seq: reply.seq,
      offset: reply.offset,
      len: reply.len,
      ...(exact
        ? {
          answers: exact.kind,
          rttMs: roundTrip(exact, now),
          ...(preciseSend(exact.sendMs) ? {} : { sendMs: exact.sendMs }),
        }
        : {}),
      meaning: meaning ??
        (exact && !c.fresh(exact)
          ? "ignored: it answers a transmission older than PKT_WAIT_MS (the sender was stalled)"
          : "ignored: not what this phase waits for"),
      confirmed: c.confirmed,
    }));
    return c.flush();
  }

  /**
   * A probe of a larger size was answered after the block size was settled on a smaller
   * one (its answer came late, or overtook): it passes the link, so use it from here on.
   * Packets still end at the next multiple of the block size: none crosses a sector.
   */
  #upgradeBlock(): void {
    const c = this.#c;
    if (!c.blockKnown || c.provenBlock <= c.block || c.phase === "finished") return;
    const from = c.block;
    c.block = c.provenBlock;
    c.status(`block size ${c.block} bytes (the ${c.block}-byte probe was answered late)`);
    c.trace.step(() => `block size ${from} → ${c.block}: a slow answer is not a lost datagram`);
  }

  /** The running app answered (e.g. its WebREPL port): the new image booted. */
  onAppRunning(now: number): TransferAction[] {
    const c = this.#c;
    c.now = now;
    if (c.phase === "bootcheck" || c.phase === "ending") {
      c.trace.step(() => "the app answers (its WebREPL port accepts a connection): it booted");
      c.done("passed");
    }
    return c.flush();
  }
}
