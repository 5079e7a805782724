/**
 * What the transfer engine's phases share: the options, the clock, the pacing model and
 * the packets in flight, the table of transmissions that replies are matched against,
 * the queue of actions for the driver, and the one place that can send an end packet.
 * Pure: the engine (`engine.ts`) feeds it the time and the replies.
 */
import { PacingModel } from "./pacing.ts";
import { FlightPlan } from "./flight_plan.ts";
import { EngineTrace, type Why } from "./engine_trace.ts";
import type { SendKind } from "./trace_record.ts";
import type { TransferAction, TransferFailure, TransferOptions, TransferSummary } from "./types.ts";
import { packetLength, type Reply } from "../format/packet.ts";

/** How long the boot check watches after the end packet, unless told otherwise. */
export const DEFAULT_BOOT_CHECK_MS = 6000;

export type Phase =
  | "probe"
  | "resolve"
  | "transfer"
  | "cleanup"
  | "ending"
  | "bootcheck"
  | "finished";

/** A transmission, as replies are matched against it. */
export interface Sent {
  offset: number;
  len: number;
  sentAt: number;
  kind: SendKind;
  /** How long the send call took (ms): the datagram left at some moment within it. */
  sendMs?: number;
}

/** One phase of the engine (or two close ones): its timers, and what a reply means in it. */
export interface PhaseHandler {
  /** When it next needs `onTimer` (the silence limit aside). */
  deadlines(): number[];
  onTimer(): void;
  /** `exact`: the transmission the reply answers exactly, if any. */
  onReply(reply: Reply, exact: Sent | undefined): void;
}

/** How a phase hands over to another: the engine (`engine.ts`) wires them. */
export interface Handover {
  /** Send from `confirmed` on (probing the block size there first if not settled). */
  enterTransfer(confirmed: number): void;
  /** Probe the block size at `offset`, where the transfer got to without one. */
  probeAt(offset: number): void;
  /** Offset 0 is confirmed in the current session: clean up with an end packet now. */
  startCleanup(confirmedAtZero: number, message: string): void;
  /** Every byte is confirmed in the current session: the final end packet now. */
  startEnding(): void;
}

/** How far inside PKT_WAIT_MS a reply must answer a transmission to count as current. */
const FRESH_MARGIN_MS = 2000;
/**
 * The slowest rate a working device believably reaches (bytes/ms): a third of the original
 * client's stop-and-wait on 256-byte blocks. With `OVERALL_SLACK_MS` per attempt for
 * probing, clean-ups and the boot check, it bounds every deploy (`overallLimitMs`).
 */
const SLOWEST_BYTES_PER_MS = 2;
const OVERALL_SLACK_MS = 60_000;
/** Transmissions remembered for matching replies. */
const SENT_TABLE = 4096;

export class EngineCore {
  readonly options: Required<TransferOptions>;
  readonly pacing = new PacingModel();
  readonly plan = new FlightPlan(this.pacing);
  /** Records go to `options.trace`; without one, none is built. */
  readonly trace: EngineTrace;
  phase: Phase = "probe";
  /** The engine's time (ms): set by each event. */
  now = 0;
  startedAt = 0;
  /** Bytes confirmed in the current device session. */
  confirmed = 0;
  block: number;
  /** The block size is settled; until then packets are `recoveryLen` long. */
  blockKnown = false;
  /** The largest probe size the device answered: it passes the link, however late. */
  provenBlock = 0;
  retransmits = 0;
  packetsSent = 0;
  attempts = 1;
  recoveries = 0;
  /** A reply confirmed a packet of ours (replies that match nothing sent do not count). */
  everAnswered = false;
  /** When a reply last confirmed a packet of ours: the silence limit counts from it. */
  lastAnswerAt = 0;
  /** Replies that answered nothing this transfer sent (another offset or length). */
  unmatched = 0;
  /** When the last final end packet was sent: the transfer time, the boot check's start. */
  finalEndAt = 0;
  /** The packet that ends the image, as last sent (the liveness check repeats it). */
  lastPacketSent: { offset: number; len: number } | undefined;

  #seq = 0;
  #sent = new Map<number, Sent>();
  #actions: TransferAction[] = [];
  #finished = false;
  /** The reply being handled, and the transmission it answers exactly (if any). */
  #handling: { reply: Reply; exact: Sent | undefined } | undefined;

  constructor(options: TransferOptions) {
    // An option passed as `undefined` (a driver forwarding an unset flag) takes the default.
    const given = Object.fromEntries(
      Object.entries(options).filter(([, v]) => v !== undefined),
    ) as TransferOptions;
    this.options = {
      bootCheckMs: DEFAULT_BOOT_CHECK_MS,
      sessionWaitMs: 10000,
      maxAttempts: 2,
      recoveryLen: 256,
      initialRtoMs: 300,
      probeTries: 2,
      firstAnswerMs: 0,
      overallMs: 0,
      freshSession: false,
      trace: () => {},
      ...given,
    };
    this.trace = new EngineTrace(given.trace, () => this.now);
    if (options.size <= 0) throw new RangeError("nothing to send");
    this.block = options.blocks[0]!;
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** How long the device may stay silent: longer before its first answer (`firstAnswerMs`). */
  silenceLimitMs(): number {
    return this.everAnswered
      ? this.options.timeoutMs
      : Math.max(this.options.timeoutMs, this.options.firstAnswerMs);
  }

  /**
   * The bound on the whole deploy: the image at the slowest believable rate, plus slack
   * for probing, clean-ups and the boot check, per attempt, after the first answer.
   */
  overallLimitMs(): number {
    if (this.options.overallMs > 0) return this.options.overallMs;
    const perAttempt = this.options.size / SLOWEST_BYTES_PER_MS + OVERALL_SLACK_MS;
    return Math.max(this.options.timeoutMs, this.options.firstAnswerMs) +
      this.options.maxAttempts * perAttempt;
  }

  // ---- replies ----

  /**
   * A reply arrived: finds the transmission it answers exactly (same seq, offset and
   * length) and notes the answer. Until `handled()`, it is the reply being handled.
   */
  receive(reply: Reply): Sent | undefined {
    const sent = this.#sent.get(reply.seq);
    const exact = sent && sent.offset === reply.offset && sent.len === reply.len ? sent : undefined;
    // Only a reply that answers exactly what was sent is a sign of life: one for another
    // offset or length may come from anything (a hostile peer answering every packet with
    // another offset would otherwise keep a transfer alive forever). A reply to a
    // transmission older than PKT_WAIT_MS (the sender was stalled) says nothing about the
    // device's current session: it does not count either.
    if (exact && this.fresh(exact)) {
      this.everAnswered = true;
      this.lastAnswerAt = this.now;
      if (exact.kind === "probe" && this.options.blocks.includes(exact.len)) {
        this.provenBlock = Math.max(this.provenBlock, exact.len);
      }
    } else if (!exact) {
      this.unmatched++;
    }
    this.#handling = { reply, exact };
    return exact;
  }

  handled(): void {
    this.#handling = undefined;
  }

  /**
   * A reply to a transmission sent well within PKT_WAIT_MS: the device's session cannot
   * have restarted since. Older replies (the sender was stalled: Ctrl-Z, a sleeping
   * laptop) say nothing about the current session and never lead to an end packet.
   */
  fresh(exact: Sent | undefined): boolean {
    return exact !== undefined &&
      this.now - exact.sentAt < this.options.sessionWaitMs - FRESH_MARGIN_MS;
  }

  /**
   * The driver says when a datagram really left (after signing it, if it had to): `at`, the
   * end of the send call, which took `sendMs`.
   */
  markSent(seq: number, at: number, sendMs = 0): void {
    const sent = this.#sent.get(seq);
    if (!sent) return;
    sent.sentAt = at;
    sent.sendMs = sendMs;
    this.plan.sentLate(seq, at);
  }

  /**
   * The reply to `sent`, sent to an idle device, came now: its round trip goes to the
   * pacing, with how long its send call took. Returns the round trip from the call's end.
   */
  idleRoundTrip(sent: Sent, sector: boolean): number {
    this.pacing.addIdleRtt(this.now - sent.sentAt, sector, sent.sendMs);
    return roundTrip(sent, this.now);
  }

  // ---- what goes out ----

  /** A data-carrying datagram; returns its seq. */
  send(offset: number, len: number, kind: SendKind, why: Why = () => kind): number {
    // A packet with len 0 IS an end packet to the device (rule 2): never by accident.
    if (len <= 0 || offset + len > this.options.size) {
      throw new RangeError(`bug: a ${kind} packet at ${offset} of length ${len}`);
    }
    const seq = ++this.#seq;
    this.#sent.set(seq, { offset, len, sentAt: this.now, kind });
    if (this.#sent.size > SENT_TABLE) this.#sent.delete(this.#sent.keys().next().value!);
    this.packetsSent++;
    this.trace.send(seq, offset, len, kind, why);
    this.#actions.push({ type: "send", seq, offset, len, kind });
    return seq;
  }

  /**
   * THE END-PACKET RULE (docs/device.md, "Session restarts keep stale bytes"): an end
   * packet only while handling a reply that proves every byte before it was confirmed in
   * the device's current session. That is a fresh reply (to a transmission sent well
   * within PKT_WAIT_MS, so the session cannot have restarted since) answering exactly
   * what was sent: the device accepts strictly in order, so it now expects `offset + len`,
   * above 0, and its flush lands inside the app region. A final end needs that to be the
   * whole image; a clean-up end (after a packet at offset 0, or one more of the old
   * session) needs only that.
   */
  endPacketAllowed(reason: "final" | "cleanup"): boolean {
    const h = this.#handling;
    if (!h || !this.fresh(h.exact)) return false;
    const expected = h.reply.offset + h.reply.len;
    return reason === "final" ? expected === this.options.size : expected > 0;
  }

  /** The only place an end packet is made: flush and reboot (len 0, rule 2). */
  sendEnd(reason: "final" | "cleanup", why: Why): void {
    if (!this.endPacketAllowed(reason)) {
      throw new Error(
        `bug: a ${reason} end packet without a fresh reply that confirms every byte before it`,
      );
    }
    const seq = ++this.#seq;
    if (reason === "final") this.finalEndAt = this.now;
    this.trace.end(seq, reason, why);
    this.#actions.push({ type: "end", seq, reason });
  }

  status(message: string): void {
    this.trace.step(() => message);
    this.#actions.push({ type: "status", message });
  }

  done(bootCheck: TransferSummary["bootCheck"]): void {
    this.phase = "finished";
    this.#finished = true;
    this.#actions.push({
      type: "done",
      result: {
        bytes: this.options.size,
        block: this.block,
        packets: this.packetsSent,
        retransmits: this.retransmits,
        paced: this.options.pace,
        bootCheck,
        attempts: this.attempts,
        recoveries: this.recoveries,
        transferMs: this.finalEndAt - this.startedAt,
      },
    });
  }

  fail(failure: TransferFailure): void {
    this.phase = "finished";
    this.#finished = true;
    this.trace.step(() => `failed: ${failure.kind}`);
    this.#actions.push({ type: "failed", failure });
  }

  /** The actions decided since the last call (and a pacing record if it changed). */
  flush(): TransferAction[] {
    this.trace.pacing(() => this.pacing.snapshot());
    const out = this.#actions;
    this.#actions = [];
    return out;
  }

  // ---- packet layout ----

  /** A packet at `offset` ends at the next block boundary: none crosses a 4 KiB sector. */
  packetLen(offset: number): number {
    const b = this.blockKnown ? this.block : this.options.recoveryLen;
    return packetLength(offset, b, this.options.size);
  }

  /** The packet that ends the image: as last sent, or as it would be sent now. */
  lastPacket(): { offset: number; len: number } {
    if (this.lastPacketSent) return this.lastPacketSent;
    const size = this.options.size;
    const b = this.blockKnown ? this.block : this.options.recoveryLen;
    const offset = Math.floor((size - 1) / b) * b;
    return { offset, len: size - offset };
  }

  /** The same with `recoveryLen` blocks: 256 bytes fit beside stale bytes in any buffer. */
  recoveryLenAt(offset: number): number {
    return packetLength(offset, this.options.recoveryLen, this.options.size);
  }

  /** Time for an end packet to be taken, or a probe to come back. */
  settleMs(): number {
    return Math.max(100, 3 * (this.pacing.serviceMs(true) + this.pacing.twoWayMs));
  }
}

/**
 * The round trip of `sent` answered at `now`, from the end of its send call: never below 0
 * (the datagram left inside the call, and a call the thread was preempted in ended after
 * the reply came).
 */
export function roundTrip(sent: Sent, now: number): number {
  return Math.max(0, now - sent.sentAt);
}
