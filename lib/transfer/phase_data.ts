/**
 * The data phase: the image from the confirmed offset on, paced so that each packet
 * reaches the device just after it has begun checking the previous one (docs/device.md,
 * "Re-entrancy"; `pacing.ts`, `flight_plan.ts`), as many in flight as cover the round trip
 * (`PacingModel.depth`). Replies confirm every byte before them (the device accepts
 * strictly in order). A lost packet is
 * resent from where the device may be; after about PKT_WAIT_MS without an answer a
 * session probe at offset 0 asks whether the device restarted its session (then:
 * clean-up). Once every byte is confirmed by a fresh reply: the ending.
 */
import type { EngineCore, Handover, PhaseHandler, Sent } from "./engine_core.ts";
import type { Flight } from "./flight_plan.ts";
import type { Why } from "./engine_trace.ts";
import type { SendKind } from "./trace_record.ts";
import { count, formatMs as ms } from "./transfer_trace.ts";
import { LossRecovery } from "./data_loss.ts";
import type { Reply } from "../format/packet.ts";

const SECTOR = 4096;

export class DataPhase implements PhaseHandler {
  readonly #c: EngineCore;
  readonly #handover: Handover;
  /** The offset to send next. */
  #next = 0;
  /** The end of the furthest packet sent: below it, a packet is a retransmission. */
  #maxSent = 0;
  #lastReplyAt: number | undefined;
  /** When the next paced packet is due. */
  #sendAt: number | undefined;
  readonly #loss: LossRecovery;

  constructor(core: EngineCore, handover: Handover) {
    this.#c = core;
    this.#handover = handover;
    this.#loss = new LossRecovery(core);
  }

  /** Sends from `confirmed` on, the bytes before it confirmed in the current session. */
  enter(confirmed: number): void {
    const c = this.#c;
    c.phase = "transfer";
    c.confirmed = confirmed;
    this.#next = confirmed;
    c.plan.reset(c.now);
    this.#lastReplyAt = c.now;
    this.#loss.reset();
    this.#maxSent = confirmed;
    if (
      !c.blockKnown && confirmed >= SECTOR / 4 && confirmed % c.options.blocks[0]! === 0 &&
      confirmed < c.options.size
    ) {
      // Recovered without knowing the block size yet: probe it here.
      this.#handover.probeAt(confirmed);
      return;
    }
    c.trace.step(() =>
      `sending from offset ${confirmed} in ${
        c.blockKnown ? c.block : c.options.recoveryLen
      }-byte blocks (a packet ends at the next block boundary: none crosses a 4 KiB sector)`
    );
    this.#maybeFinish();
  }

  /** A clean-up starts: replies to earlier session probes mean nothing any more. */
  forgetSessionProbes(): void {
    this.#loss.forgetSessionProbes();
  }

  /** See `TransferEngine.quietUntil`. */
  quietUntil(): number {
    const c = this.#c;
    const until = Math.min(this.#sendAt ?? Infinity, c.plan.oldest?.end ?? Infinity);
    return until === Infinity ? c.now : until;
  }

  deadlines(): number[] {
    const t: number[] = [];
    if (this.#sendAt !== undefined && !this.#loss.holding) t.push(this.#sendAt);
    const retransmit = this.#loss.deadline();
    if (retransmit !== undefined) t.push(retransmit);
    return t;
  }

  #pump(): void {
    const c = this.#c;
    this.#sendAt = undefined;
    if (this.#loss.holding) return;
    // The oldest reply is late: send nothing new until it comes or its timer fires (a
    // packet sent now would only delay the retransmission).
    const oldest = c.plan.oldest;
    if (oldest && c.pacing.calibrated && c.now > oldest.end + c.pacing.guardMs / 2) return;
    while (c.phase === "transfer" && this.#next < c.options.size) {
      if (!c.blockKnown && this.#next >= SECTOR / 4 && this.#next % c.options.blocks[0]! === 0) {
        if (c.plan.flights.length > 0) return;
        this.enter(this.#next);
        return;
      }
      const last = c.plan.last;
      // After a timeout the oldest packet is resent and the pipeline resumes behind it
      // (a plain loss, the usual case); if that fails too, one candidate at a time.
      if (last && this.#loss.searching) return;
      const p = c.pacing;
      if (
        last && (!c.options.pace || p.stopAndWait || !p.calibrated ||
          c.plan.flights.length >= p.depth)
      ) return;
      // Behind the last in flight, or the last one sent (given up, but it may still reach
      // the device): never into its signature check.
      const behind = c.plan.pacedBehind;
      const paced = behind && (last || p.calibrated) ? behind : undefined;
      if (paced) {
        const at = c.plan.nextSendAt()!;
        if (at > c.now) {
          this.#sendAt = at;
          return;
        }
      }
      this.#sendData(paced ? () => this.#pacedWhy(paced, !last) : () => this.#unpacedWhy());
    }
  }

  /**
   * Why a packet goes now behind `last` (`givenUp`: no longer in flight, but it may still
   * reach the device): the aim and what it was computed from.
   */
  #pacedWhy(last: Flight, givenUp: boolean): string {
    const p = this.#c.pacing;
    const aim = last.sector && !givenUp
      ? `halfway into its sector write, service ${ms(p.serviceMs(true))}`
      : `${p.phase.toFixed(2)} × service ${ms(p.serviceMs(false))}${
        last.sector ? ": into its check, as a loss before it may have made the device drop it" : ""
      }`;
    return `paced: to arrive ${ms(this.#c.plan.aimMs)} into #${last.seq}'s service (${aim}, ` +
      `network ${ms(p.twoWayMs)} both ways), ${ms(this.#c.now - last.sentAt)} after it` +
      (givenUp
        ? `, given up but maybe still on its way${this.#againNote()}`
        : `; ${this.#c.plan.flights.length + 1} in flight`);
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
    return mode + this.#againNote();
  }

  #againNote(): string {
    return this.#next < this.#maxSent ? `, again from offset ${this.#next}` : "";
  }

  #sendData(why: Why): void {
    const c = this.#c;
    const offset = this.#next;
    const len = c.packetLen(offset);
    const kind: SendKind = offset < this.#maxSent ? "retransmit" : "data";
    if (kind === "retransmit") c.retransmits++;
    c.plan.add(offset, len, c.send(offset, len, kind, why), c.now);
    if (offset + len === c.options.size) c.lastPacketSent = { offset, len };
    this.#next = offset + len;
    this.#maxSent = Math.max(this.#maxSent, this.#next);
  }

  onTimer(): void {
    const oldest = this.#c.plan.oldest;
    if (oldest && this.#c.now >= this.#loss.retransmitAt(oldest)) {
      const overdue = this.#loss.overdue(oldest, this.#next);
      if (overdue === "hold") return;
      this.#next = overdue.from;
      if (overdue.sessionProbe) return;
    }
    this.#pump();
  }

  onReply(reply: Reply, exact: Sent | undefined): void {
    const c = this.#c;
    if (exact?.kind === "session-probe" && this.#loss.isSessionProbe(reply.seq) && c.fresh(exact)) {
      c.trace.means(() => "the session probe was answered: the device restarted its session");
      this.#handover.startCleanup(
        reply.len,
        "device restarted its session — cleaning up, resending",
      );
      return;
    }
    if (!exact) {
      // It answers nothing sent (another offset or length): not from the device's session
      // with us, so it confirms nothing (a peer answering for other offsets must not
      // drive the transfer, issue 21).
      c.trace.means(() => "ignored: it answers no packet that was sent");
      return;
    }
    const end = reply.offset + reply.len;
    const i = c.plan.flights.findIndex((f) => f.offset === reply.offset && f.len === reply.len);
    if (i < 0) {
      // A late reply for a packet sent before a timeout: it still confirms every byte
      // before its end, if it is one of ours (the layout is fixed by the block size).
      const ours = reply.offset >= c.confirmed && end <= this.#maxSent &&
        reply.len === c.packetLen(reply.offset);
      if (!ours) {
        c.trace.means(() => "ignored: no packet of this transfer's layout");
        return;
      }
      c.trace.means(() =>
        `late reply, after its packet was given up: confirms every byte before ${end}`
      );
      this.#confirm(end, false, reply.seq);
      return;
    }
    const sample = this.#measure(c.plan.flights[i]!, i, exact);
    c.trace.means(() =>
      `ack: confirms every byte before ${end}${
        i > 0 ? ` (and ${count(i, "packet")} before it, whose replies were lost)` : ""
      }${sample}`
    );
    c.pacing.onAck();
    this.#confirm(end, c.fresh(exact) && exact!.offset === reply.offset, reply.seq);
  }

  /**
   * What the reply to flight `f` (the `i`-th in flight) tells the pacing model; returns
   * what it measured, for the trace.
   */
  #measure(f: Flight, i: number, exact: Sent | undefined): string {
    const c = this.#c;
    const p = c.pacing;
    let sample = "";
    // A resent packet the device had already taken is answered at once, without its check
    // or its sector write: a reply to a retransmission times nothing (Karn's rule).
    if (!exact || f.offset !== c.confirmed || exact.kind === "retransmit") return sample;
    const last = this.#lastReplyAt;
    // How long before the previous reply it was due on the device. The network's share is
    // underestimated (pacing.ts, `twoWayMs`): a packet due after the reply reached a device
    // that had nothing to do, and so does one sent with nothing in flight.
    const margin = last === undefined ? 0 : last - (exact.sentAt + p.twoWayMs);
    const reachedIdle = f.idle || (last !== undefined && margin <= 0 && p.calibrated);
    if (exact.sentAt === f.sentAt && reachedIdle && i === 0) {
      const rtt = c.idleRoundTrip(exact, f.sector);
      if (c.trace.on) sample = `; idle round trip ${ms(rtt)}`;
    }
    // It was sent early enough to wait on the device behind the previous packet: the
    // gap between the two replies is its service time.
    if (last !== undefined && margin > 0) {
      p.addServiceSample(c.now - last, f.sector, margin);
      if (c.trace.on) {
        sample += `; service ${ms(c.now - last)}${
          f.sector ? " with a sector write" : ""
        } (it waited on the device)`;
      }
    }
    return sample;
  }

  /** Every byte before `upTo` is confirmed; `fresh`: by a reply that is surely current. */
  #confirm(upTo: number, fresh: boolean, answered: number): void {
    const c = this.#c;
    c.confirmed = upTo;
    this.#loss.progress();
    this.#lastReplyAt = c.now;
    c.plan.confirm(upTo, c.now, answered);
    // Send next what the device expects next, unless it is already in flight.
    if (c.plan.oldest?.offset !== upTo) {
      c.plan.flights = [];
      this.#next = upTo;
    }
    this.#maybeFinish(fresh);
  }

  #maybeFinish(fresh = true): void {
    if (this.#c.confirmed < this.#c.options.size) {
      this.#pump();
    } else if (fresh) {
      this.#sendAt = undefined;
      this.#handover.startEnding();
    } else {
      // Complete, but only by a reply that may predate a session restart: repeat the last
      // packet and send the end packet only on its answer.
      this.#next = this.#c.lastPacket().offset;
      this.#pump();
    }
  }
}
