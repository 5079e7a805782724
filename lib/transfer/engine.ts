/**
 * The transfer engine: a state machine with no I/O. Events (`start`, `onReply`,
 * `onTimer`, `onAppRunning`) and the time go in; what to send comes out as actions. The
 * driver (`deploy.ts`) signs and sends; tests drive it with a fake clock.
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
 *   for a clean-up only right after a packet at offset 0 was confirmed.
 */
import type { PacingModel } from "./pacing.ts";
import type { Flight } from "./flight_plan.ts";
import { count, formatMs as ms } from "./transfer_trace.ts";
import type { Why } from "./engine_trace.ts";
import { EngineCore, type Handover, type Phase, type Sent } from "./engine_core.ts";
import { EndingPhase } from "./phase_ending.ts";
import { CleanupPhase } from "./phase_cleanup.ts";
import { ProbePhase } from "./phase_probe.ts";
import type { SendKind } from "./trace_record.ts";
import type { TransferAction, TransferOptions } from "./types.ts";
import type { Reply } from "../format/packet.ts";

export type { PacingSnapshot, SendKind, TransferTrace } from "./trace_record.ts";
export type { TransferAction, TransferFailure, TransferOptions, TransferSummary } from "./types.ts";

const MAX_DEPTH = 3;
const SECTOR = 4096;

export class TransferEngine {
  readonly #c: EngineCore;

  readonly #probe: ProbePhase;

  // transfer
  #next = 0;
  #lastReplyAt: number | undefined;
  #sendAt: number | undefined;
  #backoff = 1;
  #alternate = false;
  #maxSent = 0;
  /** While nothing is answered: the offsets the device may expect or repeat, tried in turn. */
  #resync: number[] = [];
  #resyncIndex = 0;
  /** The oldest packet is overdue; later ones may still be answered (a lost reply). */
  #holding = false;
  /** Session probes sent since the last progress: only their replies mean a restart. */
  #sessionProbes = new Set<number>();

  readonly #cleanup: CleanupPhase;
  readonly #ending: EndingPhase;

  constructor(options: TransferOptions) {
    this.#c = new EngineCore(options);
    const handover: Handover = {
      enterTransfer: (confirmed) => this.#enterTransfer(confirmed),
      probeAt: (offset) => this.#probe.restartAt(offset),
      startCleanup: (confirmedAtZero, message) => this.#startCleanup(confirmedAtZero, message),
      startEnding: () => this.#startEnding(),
    };
    this.#ending = new EndingPhase(this.#c, handover);
    this.#cleanup = new CleanupPhase(this.#c, handover);
    this.#probe = new ProbePhase(this.#c, handover);
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
  get lastAnswerAt(): number {
    return this.#c.lastAnswerAt;
  }

  start(now: number): TransferAction[] {
    this.#c.now = now;
    this.#c.startedAt = now;
    this.#c.lastAnswerAt = now;
    this.#c.trace.step(() =>
      `${this.#c.options.size} bytes to send; block sizes ${this.#c.options.blocks.join(", ")}; ` +
      (this.#c.options.pace ? "paced once calibrated" : "stop-and-wait (--pace off)") +
      `; the device may stay silent ${this.#c.silenceLimitMs() / 1000} s`
    );
    if (this.#c.options.blocks.length > 1) {
      this.#c.status("probing the largest block size the link passes");
    }
    this.#probe.start();
    return this.#c.flush();
  }

  /**
   * The driver tells when a datagram really left (after signing it, if it had to): round
   * trips are measured from there.
   */
  markSent(seq: number, at: number): void {
    this.#c.markSent(seq, at);
  }

  /** The time `onTimer` should next be called, if any. */
  nextTimer(): number | undefined {
    if (this.#c.finished) return undefined;
    const t: number[] = [this.#c.lastAnswerAt + this.#c.silenceLimitMs()];
    switch (this.#c.phase) {
      case "probe":
      case "resolve":
        t.push(...this.#probe.deadlines());
        break;
      case "transfer":
        if (this.#sendAt !== undefined && !this.#holding) t.push(this.#sendAt);
        if (this.#c.plan.oldest) {
          t.push(this.#holding ? this.#lastDeadline() : this.#retransmitAt(this.#c.plan.oldest));
        }
        break;
      case "cleanup":
        t.push(...this.#cleanup.deadlines());
        break;
      case "ending":
      case "bootcheck":
        t.push(...this.#ending.deadlines());
        break;
    }
    return Math.min(...t);
  }

  onTimer(now: number): TransferAction[] {
    this.#c.now = now;
    if (this.#c.finished) return [];
    const silent = now - this.#c.lastAnswerAt;
    const bounded = this.#c.phase !== "ending" && this.#c.phase !== "bootcheck";
    if (bounded && silent >= this.#c.silenceLimitMs()) {
      this.#c.trace.timeout(
        () => `no answer for ${(silent / 1000).toFixed(1)} s (the limit in this phase)`,
        () => "giving up: no end packet is sent",
      );
      this.#c.fail(
        this.#c.everAnswered
          ? { kind: "stopped-answering", confirmed: this.#c.confirmed, silentMs: silent }
          : { kind: "no-answer" },
      );
      return this.#c.flush();
    }
    switch (this.#c.phase) {
      case "probe":
      case "resolve":
        this.#probe.onTimer();
        break;
      case "transfer":
        this.#transferTimer();
        break;
      case "cleanup":
        this.#cleanup.onTimer();
        break;
      case "ending":
      case "bootcheck":
        this.#ending.onTimer();
        break;
    }
    return this.#c.flush();
  }

  onReply(now: number, reply: Reply): TransferAction[] {
    this.#c.now = now;
    if (this.#c.finished) return [];
    const exact = this.#c.receive(reply);
    this.#c.trace.beginReply();
    try {
      switch (this.#c.phase) {
        case "probe":
        case "resolve":
          this.#probe.onReply(reply, exact);
          break;
        case "transfer":
          this.#transferReply(reply, exact);
          break;
        case "cleanup":
          this.#cleanup.onReply(reply, exact);
          break;
        case "ending":
        case "bootcheck":
          this.#ending.onReply(reply, exact);
          break;
      }
    } finally {
      this.#c.handled();
    }
    this.#c.trace.endReply((meaning) => ({
      type: "reply",
      at: now,
      seq: reply.seq,
      offset: reply.offset,
      len: reply.len,
      ...(exact ? { answers: exact.kind, rttMs: now - exact.sentAt } : {}),
      meaning: meaning ??
        (exact && !this.#c.fresh(exact)
          ? "ignored: it answers a transmission older than PKT_WAIT_MS (the sender was stalled)"
          : "ignored: not what this phase waits for"),
      confirmed: this.#c.confirmed,
    }));
    return this.#c.flush();
  }

  /** The running app answered (e.g. its WebREPL port): the new image booted. */
  onAppRunning(now: number): TransferAction[] {
    this.#c.now = now;
    if (this.#c.phase === "bootcheck" || this.#c.phase === "ending") {
      this.#c.trace.step(() =>
        "the app answers (its WebREPL port accepts a connection): it booted"
      );
      this.#c.done("passed");
    }
    return this.#c.flush();
  }

  // ---- transfer ----

  #enterTransfer(confirmed: number): void {
    this.#c.phase = "transfer";
    this.#c.confirmed = confirmed;
    this.#next = confirmed;
    this.#c.plan.reset(this.#c.now);
    this.#lastReplyAt = this.#c.now;
    this.#backoff = 1;
    this.#resync = [];
    this.#resyncIndex = 0;
    this.#holding = false;
    this.#maxSent = confirmed;
    if (
      !this.#c.blockKnown && confirmed >= SECTOR / 4 &&
      confirmed % this.#c.options.blocks[0]! === 0 &&
      confirmed < this.#c.options.size
    ) {
      // Recovered without knowing the block size yet: probe it here.
      this.#probe.restartAt(confirmed);
      return;
    }
    this.#c.trace.step(() =>
      `sending from offset ${confirmed} in ${
        this.#c.blockKnown ? this.#c.block : this.#c.options.recoveryLen
      }-byte blocks (a packet ends at the next block boundary: none crosses a 4 KiB sector)`
    );
    this.#maybeFinishTransfer();
  }

  #pump(): void {
    this.#sendAt = undefined;
    if (this.#holding) return;
    // The oldest reply is late: send nothing new until it comes or its timer fires (a
    // packet sent now would only delay the retransmission).
    const oldest = this.#c.plan.oldest;
    if (
      oldest && this.#c.pacing.calibrated && this.#c.now > oldest.end + this.#c.pacing.guardMs / 2
    ) {
      return;
    }
    while (this.#c.phase === "transfer" && this.#next < this.#c.options.size) {
      if (
        !this.#c.blockKnown && this.#next >= SECTOR / 4 &&
        this.#next % this.#c.options.blocks[0]! === 0
      ) {
        if (this.#c.plan.flights.length > 0) return;
        this.#enterTransfer(this.#next);
        return;
      }
      const last = this.#c.plan.last;
      // After a timeout the oldest packet is resent and the pipeline resumes behind it
      // (a plain loss, the usual case); if that fails too, one candidate at a time.
      if (last && this.#resync.length > 0 && this.#resyncIndex > 0) return;
      if (last) {
        const p = this.#c.pacing;
        if (
          !this.#c.options.pace || p.stopAndWait || !p.calibrated ||
          this.#c.plan.flights.length >= MAX_DEPTH
        ) return;
        const at = this.#c.plan.nextSendAt()!;
        if (at > this.#c.now) {
          this.#sendAt = at;
          return;
        }
      }
      this.#sendData(last ? () => this.#pacedWhy(last) : () => this.#unpacedWhy());
    }
  }

  /** Why a packet goes now behind `last`: the aim and what it was computed from. */
  #pacedWhy(last: Flight): string {
    const p = this.#c.pacing;
    return `paced: to arrive ${ms(p.aimMs)} into #${last.seq}'s service (${
      p.phase.toFixed(2)
    } × service ${ms(p.serviceMs(false))}, network ${ms(p.twoWayMs)} both ways), ` +
      `${ms(this.#c.now - last.sentAt)} after it; ${this.#c.plan.flights.length + 1} in flight`;
  }

  /** Why a packet goes with nothing in flight before it. */
  #unpacedWhy(): string {
    const p = this.#c.pacing;
    const mode = !this.#c.options.pace
      ? "stop-and-wait (--pace off)"
      : !p.calibrated
      ? `stop-and-wait until ${p.snapshot().calibrationSamples} idle round trips are measured (${p.snapshot().idleSamples} so far)`
      : p.stopAndWait
      ? `stop-and-wait: ${p.snapshot().recentLosses} losses in the last 16 packets`
      : "nothing in flight";
    const again = this.#next < this.#maxSent ? `, again from offset ${this.#next}` : "";
    return mode + again;
  }

  #sendData(why: Why): void {
    const offset = this.#next;
    const len = this.#c.packetLen(offset);
    const kind: SendKind = offset < this.#maxSent ? "retransmit" : "data";
    if (kind === "retransmit") this.#c.retransmits++;
    this.#c.plan.add(offset, len, this.#c.send(offset, len, kind, why), this.#c.now);
    if (offset + len === this.#c.options.size) this.#c.lastPacketSent = { offset, len };
    this.#next = offset + len;
    this.#maxSent = Math.max(this.#maxSent, this.#next);
  }

  #retransmitAt(f: Flight): number {
    return this.#c.plan.retransmitAt(f, this.#backoff, this.#c.options.initialRtoMs);
  }

  #lastDeadline(): number {
    return this.#c.plan.lastDeadline(this.#backoff, this.#c.options.initialRtoMs);
  }

  #transferTimer(): void {
    const oldest = this.#c.plan.oldest;
    if (oldest && this.#c.now >= this.#retransmitAt(oldest)) {
      // Send nothing while packets sent after it may still be on the device: a reply to
      // any of them confirms it too (its own reply was lost), and a retransmission that
      // arrived while they wait would be handled inside their signature checks.
      if (this.#c.now < this.#lastDeadline()) {
        if (!this.#holding) {
          this.#c.trace.timeout(
            () =>
              `#${oldest.seq} (offset ${oldest.offset}, ${oldest.len} bytes) unanswered ${
                ms(this.#c.now - oldest.sentAt)
              } after it was sent`,
            () =>
              `holding: a reply to one of the ${
                count(this.#c.plan.flights.length - 1, "later packet")
              } in flight would confirm it too`,
          );
        }
        this.#holding = true;
        return;
      }
      this.#holding = false;
      this.#c.pacing.onLoss();
      this.#backoff = Math.min(this.#backoff * 2, 16);
      // The device may have accepted some of the packets in flight with their replies
      // lost: then it expects, or repeats, a later offset than the oldest. Try each.
      if (this.#resync.length === 0) {
        // Candidates: what it confirmed last, each packet in flight, and the packet after
        // them (all of them accepted, every reply lost).
        this.#resync = [
          ...new Set([this.#c.confirmed, ...this.#c.plan.flights.map((f) => f.offset), this.#next]),
        ].filter((o) => o < this.#c.options.size);
        this.#resyncIndex = 0;
      } else {
        this.#resyncIndex++;
      }
      const inFlight = this.#c.plan.flights.length;
      this.#c.plan.flights = [];
      this.#next = this.#resync[this.#resyncIndex % this.#resync.length]!;
      this.#c.trace.timeout(
        () =>
          `#${oldest.seq} (offset ${oldest.offset}, ${oldest.len} bytes)${
            inFlight > 1 ? ` and ${count(inFlight - 1, "packet")} behind it` : ""
          } unanswered`,
        () =>
          `lost: retransmission timer ×${this.#backoff}; resending from offset ${this.#next} ` +
          `(where the device may be: ${this.#resync.join(", ")})`,
      );
      const lostContact =
        this.#c.now - this.#c.lastAnswerAt >= this.#c.options.sessionWaitMs - 1000;
      if (lostContact && this.#c.confirmed > 0 && (this.#alternate = !this.#alternate)) {
        // Nothing confirmed for about PKT_WAIT_MS: the device may have restarted its
        // session, and then it answers a packet at offset 0 only.
        const len = this.#c.recoveryLenAt(0);
        const seq = this.#c.send(
          0,
          len,
          "session-probe",
          () =>
            `nothing confirmed for ${
              ((this.#c.now - this.#c.lastAnswerAt) / 1000).toFixed(1)
            } s (PKT_WAIT_MS is ${this.#c.options.sessionWaitMs / 1000} s): only a device that ` +
            "restarted its session answers offset 0",
        );
        this.#sessionProbes.add(seq);
        this.#c.plan.placeholder(0, len, seq, this.#c.now);
        return;
      }
    }
    this.#pump();
  }

  #transferReply(reply: Reply, exact: Sent | undefined): void {
    if (
      exact?.kind === "session-probe" && this.#sessionProbes.has(reply.seq) && this.#c.fresh(exact)
    ) {
      this.#c.trace.means(() => "the session probe was answered: the device restarted its session");
      this.#startCleanup(reply.len, "device restarted its session — cleaning up, resending");
      return;
    }
    const i = this.#c.plan.flights.findIndex((f) =>
      f.offset === reply.offset && f.len === reply.len
    );
    if (i < 0) {
      // A late reply for a packet sent before a timeout: it still confirms every byte
      // before its end, if it is one of ours (the layout is fixed by the block size).
      const ours = reply.offset >= this.#c.confirmed && reply.offset + reply.len <= this.#maxSent &&
        reply.len === this.#c.packetLen(reply.offset);
      if (!ours) {
        this.#c.trace.means(() => "ignored: no packet of this transfer's layout");
        return;
      }
      this.#c.trace.means(() =>
        `late reply, after its packet was given up: confirms every byte before ${
          reply.offset + reply.len
        }`
      );
      this.#confirm(reply.offset + reply.len, false);
      return;
    }
    const f = this.#c.plan.flights[i]!;
    const p = this.#c.pacing;
    let sample = "";
    if (exact && f.offset === this.#c.confirmed) {
      if (exact.sentAt === f.sentAt && f.idle && i === 0) {
        p.addIdleRtt(this.#c.now - f.sentAt, f.sector);
        if (this.#c.trace.on) sample = `; idle round trip ${ms(this.#c.now - f.sentAt)}`;
      }
      // It was sent early enough to wait on the device behind the previous packet: the
      // gap between the two replies is its service time.
      const waited = this.#lastReplyAt !== undefined &&
        exact.sentAt + p.twoWayMs < this.#lastReplyAt;
      if (waited) {
        p.addServiceSample(this.#c.now - this.#lastReplyAt!, f.sector);
        if (this.#c.trace.on) {
          sample += `; service ${ms(this.#c.now - this.#lastReplyAt!)}${
            f.sector ? " with a sector write" : ""
          } (it waited on the device)`;
        }
      }
    }
    this.#c.trace.means(() =>
      `ack: confirms every byte before ${reply.offset + reply.len}${
        i > 0 ? ` (and ${count(i, "packet")} before it, whose replies were lost)` : ""
      }${sample}`
    );
    p.onAck();
    this.#confirm(reply.offset + reply.len, this.#c.fresh(exact) && exact!.offset === reply.offset);
  }

  /** Every byte before `upTo` is confirmed; `fresh`: by a reply that is surely current. */
  #confirm(upTo: number, fresh: boolean): void {
    this.#c.confirmed = upTo;
    this.#resync = [];
    this.#holding = false;
    this.#sessionProbes.clear();
    this.#backoff = 1;
    this.#lastReplyAt = this.#c.now;
    this.#c.plan.confirm(upTo, this.#c.now);
    // Send next what the device expects next, unless it is already in flight.
    if (this.#c.plan.oldest?.offset !== upTo) {
      this.#c.plan.flights = [];
      this.#next = upTo;
    }
    this.#maybeFinishTransfer(fresh);
  }

  #maybeFinishTransfer(fresh = true): void {
    if (this.#c.confirmed < this.#c.options.size) {
      this.#pump();
    } else if (fresh) {
      this.#startEnding();
    } else {
      // Complete, but only by a reply that may predate a session restart: repeat the last
      // packet and send the end packet only on its answer.
      this.#next = this.#c.lastPacket().offset;
      this.#pump();
    }
  }

  #startCleanup(confirmedAtZero: number, message: string): void {
    // Only replies to session probes sent after this one mean another restart.
    this.#sessionProbes.clear();
    this.#cleanup.start(confirmedAtZero, message);
  }

  #startEnding(): void {
    this.#c.plan.flights = [];
    this.#sendAt = undefined;
    this.#ending.start();
  }

  // ---- plumbing ----
}
