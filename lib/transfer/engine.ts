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
import { PacingModel } from "./pacing.ts";
import { type Flight, FlightPlan } from "./flight_plan.ts";
import { count, formatMs as ms } from "./transfer_trace.ts";
import { EngineTrace, type Why } from "./engine_trace.ts";
import type { SendKind } from "./trace_record.ts";
import type { TransferAction, TransferFailure, TransferOptions, TransferSummary } from "./types.ts";

export type { PacingSnapshot, SendKind, TransferTrace } from "./trace_record.ts";
export type { TransferAction, TransferFailure, TransferOptions, TransferSummary } from "./types.ts";
import type { Reply } from "../format/packet.ts";

type Phase = "probe" | "resolve" | "transfer" | "cleanup" | "ending" | "bootcheck" | "finished";

interface Sent {
  offset: number;
  len: number;
  sentAt: number;
  kind: SendKind;
}

const MAX_DEPTH = 3;
/** How far inside PKT_WAIT_MS a reply must answer a transmission to count as current. */
const FRESH_MARGIN_MS = 2000;
/** Session restarts cleaned up in one deploy before it gives up on the link. */
const MAX_RECOVERIES = 5;
/** Spacing of the first probes of each size: far beyond a signature check. */
const PROBE_STAGGER_MS = 30;
const SECTOR = 4096;

export class TransferEngine {
  readonly options: Required<TransferOptions>;
  readonly pacing = new PacingModel();
  /** Records go to `options.trace`; without one, none is built. */
  readonly #trace: EngineTrace;
  readonly #plan = new FlightPlan(this.pacing);
  phase: Phase = "probe";
  /** Bytes confirmed in the current device session. */
  confirmed = 0;
  block: number;
  retransmits = 0;
  packetsSent = 0;
  attempts = 1;
  recoveries = 0;

  #seq = 0;
  #sent = new Map<number, Sent>();
  #now = 0;
  #everAnswered = false;
  #lastAnswerAt = 0;
  #finished = false;
  #actions: TransferAction[] = [];

  // probe / resolve
  #probeAt = 0;
  #candidates: number[];
  #candidate = 0;
  #tries = 0;
  #timedOut = new Set<number>();
  #cycleDone = false;
  /** First round: the sizes are tried one after another without waiting a full timeout. */
  #staggering = true;
  #resolveOptions: number[] = [];
  #blockKnown = false;
  #cleanedUpOnce = false;
  /** Probes timed out before the device ever answered (after a trigger: it was rebooting). */
  #probedBlind = false;
  #probeDeadline = 0;

  // transfer
  #next = 0;
  #lastReplyAt: number | undefined;
  #sendAt: number | undefined;
  #backoff = 1;
  #alternate = false;
  #maxSent = 0;
  /** The packet that ends the image, as last sent (the liveness check repeats it). */
  #lastPacketSent: { offset: number; len: number } | undefined;
  /** While nothing is answered: the offsets the device may expect or repeat, tried in turn. */
  #resync: number[] = [];
  #resyncIndex = 0;
  /** The oldest packet is overdue; later ones may still be answered (a lost reply). */
  #holding = false;
  /** Session probes sent since the last progress: only their replies mean a restart. */
  #sessionProbes = new Set<number>();

  // cleanup
  #cleanupStage: "check-left" | "await-fresh" = "check-left";
  #cleanupConfirmed = 0;
  #cleanupEnds = 0;
  #cleanupTries = 0;
  #cleanupAt = 0;

  // ending / boot check
  #endsSent = 0;
  #endSentAt = 0;
  #livenessTries = 0;
  #livenessAt = 0;
  #bootProbeAt = 0;
  #bootProbes = 0;

  constructor(options: TransferOptions) {
    // An option passed as `undefined` (a driver forwarding an unset flag) takes the default.
    const given = Object.fromEntries(
      Object.entries(options).filter(([, v]) => v !== undefined),
    ) as TransferOptions;
    this.options = {
      bootCheckMs: 6000,
      sessionWaitMs: 10000,
      maxAttempts: 2,
      recoveryLen: 256,
      initialRtoMs: 300,
      probeTries: 2,
      firstAnswerMs: 0,
      freshSession: false,
      trace: () => {},
      ...given,
    };
    this.#trace = new EngineTrace(given.trace, () => this.#now);
    if (options.size <= 0) throw new RangeError("nothing to send");
    this.#candidates = [...options.blocks];
    this.block = this.#candidates[0]!;
  }

  get lastAnswerAt(): number {
    return this.#lastAnswerAt;
  }

  /** How long the device may stay silent: longer before its first answer (`firstAnswerMs`). */
  #silenceLimitMs(): number {
    return this.#everAnswered
      ? this.options.timeoutMs
      : Math.max(this.options.timeoutMs, this.options.firstAnswerMs);
  }

  #startedAt = 0;

  start(now: number): TransferAction[] {
    this.#now = now;
    this.#startedAt = now;
    this.#lastAnswerAt = now;
    this.#trace.step(() =>
      `${this.options.size} bytes to send; block sizes ${this.#candidates.join(", ")}; ` +
      (this.options.pace ? "paced once calibrated" : "stop-and-wait (--pace off)") +
      `; the device may stay silent ${this.#silenceLimitMs() / 1000} s`
    );
    if (this.#candidates.length > 1) this.#status("probing the largest block size the link passes");
    this.#sendProbe();
    return this.#flush();
  }

  /**
   * The driver tells when a datagram really left (after signing it, if it had to): round
   * trips are measured from there.
   */
  markSent(seq: number, at: number): void {
    const sent = this.#sent.get(seq);
    if (!sent) return;
    sent.sentAt = at;
    this.#plan.sentLate(seq, at);
  }

  /** The time `onTimer` should next be called, if any. */
  nextTimer(): number | undefined {
    if (this.#finished) return undefined;
    const t: number[] = [this.#lastAnswerAt + this.#silenceLimitMs()];
    switch (this.phase) {
      case "probe":
      case "resolve":
        t.push(this.#probeDeadline);
        break;
      case "transfer":
        if (this.#sendAt !== undefined && !this.#holding) t.push(this.#sendAt);
        if (this.#plan.oldest) {
          t.push(this.#holding ? this.#lastDeadline() : this.#retransmitAt(this.#plan.oldest));
        }
        break;
      case "cleanup":
        t.push(this.#cleanupAt);
        break;
      case "ending":
        t.push(this.#livenessAt);
        break;
      case "bootcheck":
        t.push(this.#bootProbeAt, this.#endSentAt + this.options.bootCheckMs);
        break;
    }
    return Math.min(...t);
  }

  onTimer(now: number): TransferAction[] {
    this.#now = now;
    if (this.#finished) return [];
    const silent = now - this.#lastAnswerAt;
    const bounded = this.phase !== "ending" && this.phase !== "bootcheck";
    if (bounded && silent >= this.#silenceLimitMs()) {
      this.#trace.timeout(
        () => `no answer for ${(silent / 1000).toFixed(1)} s (the limit in this phase)`,
        () => "giving up: no end packet is sent",
      );
      this.#fail(
        this.#everAnswered
          ? { kind: "stopped-answering", confirmed: this.confirmed, silentMs: silent }
          : { kind: "no-answer" },
      );
      return this.#flush();
    }
    switch (this.phase) {
      case "probe":
      case "resolve":
        if (now >= this.#probeDeadline) this.#probeTimeout();
        break;
      case "transfer":
        this.#transferTimer();
        break;
      case "cleanup":
        if (now >= this.#cleanupAt) this.#cleanupTimer();
        break;
      case "ending":
        if (now >= this.#livenessAt) this.#livenessTimer();
        break;
      case "bootcheck":
        this.#bootTimer();
        break;
    }
    return this.#flush();
  }

  onReply(now: number, reply: Reply): TransferAction[] {
    this.#now = now;
    if (this.#finished) return [];
    const sent = this.#sent.get(reply.seq);
    const exact = sent && sent.offset === reply.offset && sent.len === reply.len ? sent : undefined;
    // A reply to a transmission older than PKT_WAIT_MS (the sender was stalled) says
    // nothing about the device's current session: it does not count as an answer.
    if (!exact || this.#fresh(exact)) {
      this.#everAnswered = true;
      this.#lastAnswerAt = now;
    }
    this.#trace.beginReply();
    switch (this.phase) {
      case "probe":
        this.#probeReply(reply, exact);
        break;
      case "resolve":
        this.#resolveReply(reply, exact);
        break;
      case "transfer":
        this.#transferReply(reply, exact);
        break;
      case "cleanup":
        this.#cleanupReply(reply, exact);
        break;
      case "ending":
      case "bootcheck":
        this.#afterEndReply(reply, exact);
        break;
    }
    this.#trace.endReply((meaning) => ({
      type: "reply",
      at: now,
      seq: reply.seq,
      offset: reply.offset,
      len: reply.len,
      ...(exact ? { answers: exact.kind, rttMs: now - exact.sentAt } : {}),
      meaning: meaning ??
        (exact && !this.#fresh(exact)
          ? "ignored: it answers a transmission older than PKT_WAIT_MS (the sender was stalled)"
          : "ignored: not what this phase waits for"),
      confirmed: this.confirmed,
    }));
    return this.#flush();
  }

  /** The running app answered (e.g. its WebREPL port): the new image booted. */
  onAppRunning(now: number): TransferAction[] {
    this.#now = now;
    if (this.phase === "bootcheck" || this.phase === "ending") {
      this.#trace.step(() => "the app answers (its WebREPL port accepts a connection): it booted");
      this.#done("passed");
    }
    return this.#flush();
  }

  // ---- probe: find the largest block the link passes, at offset #probeAt ----

  #sendProbe(): void {
    const size = this.#candidates[this.#candidate]!;
    const len = Math.min(size, this.options.size - this.#probeAt);
    const staggered = this.#staggering && this.#candidate < this.#candidates.length - 1;
    const wait = staggered ? PROBE_STAGGER_MS : this.#probeRto();
    this.#send(
      this.#probeAt,
      len,
      "probe",
      () =>
        this.#candidates.length > 1
          ? `does a ${size}-byte block pass the link? ` +
            (staggered
              ? `the next size follows in ${wait} ms, long after this one's signature check`
              : `answer expected within ${wait} ms`)
          : `the device's first answer, at offset ${this.#probeAt} (within ${wait} ms)`,
    );
    // A probe that is not answered is presumed too large (or lost) until an answer says
    // otherwise: if it was accepted with its reply lost, `resolve` finds out.
    this.#timedOut.add(size);
    this.#probeDeadline = this.#now + wait;
  }

  #probeRto(): number {
    return this.pacing.measured
      ? Math.min(this.options.initialRtoMs, 2 * this.pacing.serviceMs(false) + 30)
      : this.options.initialRtoMs;
  }

  #probeTimeout(): void {
    this.#trace.timeout(
      () => `no answer to the ${this.phase === "resolve" ? "resolving packet" : "probe"}`,
      () =>
        this.phase === "resolve"
          ? "trying the next candidate offset"
          : this.#staggering
          ? "next block size"
          : "probing again",
    );
    if (!this.#everAnswered) this.#probedBlind = true;
    if (this.phase === "resolve") {
      this.#candidate = (this.#candidate + 1) % this.#resolveOptions.length;
      this.#sendResolve();
      return;
    }
    if (this.#staggering) {
      // Next size down, well after the previous one's signature check (no nesting).
      if (++this.#candidate < this.#candidates.length) {
        this.#sendProbe();
        return;
      }
      this.#staggering = false;
      this.#candidate = 0;
      this.#tries = 1;
      this.#sendProbe();
      return;
    }
    if (++this.#tries >= this.options.probeTries) {
      this.#tries = 0;
      if (++this.#candidate >= this.#candidates.length) {
        this.#candidate = 0;
        if (!this.#cycleDone && this.#probeAt === 0 && !this.#everAnswered) {
          this.#status(
            this.options.freshSession
              ? "no answer yet: the device is still rebooting into OTA mode; waiting"
              : "no answer yet: the device may still be in an earlier session (an interrupted deploy?) " +
                "and restarts it after 10 s without packets; waiting",
          );
        }
        this.#cycleDone = true;
      }
    }
    this.#sendProbe();
  }

  #probeReply(reply: Reply, exact: Sent | undefined): void {
    if (
      reply.offset !== this.#probeAt ||
      !this.#candidates.includes(reply.len) && reply.offset + reply.len !== this.options.size
    ) {
      this.#trace.means(() => `ignored: not an answer to a probe at offset ${this.#probeAt}`);
      return;
    }
    if (!this.#fresh(exact)) return;
    this.pacing.addIdleRtt(this.#now - exact!.sentAt, false);
    this.#trace.means(() =>
      `the ${reply.len}-byte probe was taken: an idle round trip of ${
        ms(this.#now - exact!.sentAt)
      }`
    );
    if (
      this.#probeAt === 0 && this.#cycleDone && !this.#cleanedUpOnce && !this.#freshSessionAnswer()
    ) {
      // The device answered only after a silence: it may hold stale bytes from an earlier
      // session. Offset 0 is confirmed in the current session, so an end packet now
      // flushes inside the app region and reboots it into a clean OTA session.
      this.#startCleanup(
        reply.len,
        "the device had an earlier session open — cleaning up, then sending from the start",
      );
      return;
    }
    this.#timedOut.delete(reply.len);
    // Another size sent here went unanswered: it may have been accepted with its reply
    // lost, and then this reply is the device repeating it (same offset, rule 3, with
    // this request's length). Find out which offset it expects next.
    const fits = (s: number) => this.#probeAt + s < this.options.size;
    const others = [...this.#timedOut].filter((s) => s !== reply.len && fits(s));
    if (others.length === 0 || !fits(reply.len)) {
      this.#chooseBlock(reply.len, this.#probeAt + reply.len);
      return;
    }
    this.#trace.means(() =>
      `the ${reply.len}-byte probe was taken, but ${
        others.join(" and ")
      }-byte probes went unanswered: one may have been taken with its reply lost`
    );
    this.phase = "resolve";
    // The size just answered is by far the likeliest (the larger ones usually exceed the
    // link's datagram size): try it twice per round.
    this.#resolveOptions = [reply.len, reply.len, ...others.sort((a, b) => b - a)];
    this.#candidate = 0;
    this.#sendResolve();
  }

  /**
   * After a trigger the device entered OTA mode with a clean buffer; it can hold stale
   * bytes only after a session of ours timed out, PKT_WAIT_MS after its first packet was
   * accepted, which was after our start ("Session restarts keep stale bytes").
   */
  /**
   * A reply to a transmission sent well within PKT_WAIT_MS: the device's session cannot
   * have restarted since. Older replies (the sender was stalled: Ctrl-Z, a sleeping
   * laptop) say nothing about the current session and never lead to an end packet.
   */
  #fresh(exact: Sent | undefined): boolean {
    return exact !== undefined &&
      this.#now - exact.sentAt < this.options.sessionWaitMs - FRESH_MARGIN_MS;
  }

  #freshSessionAnswer(): boolean {
    return this.options.freshSession && this.#now - this.#startedAt < this.options.sessionWaitMs;
  }

  #sendResolve(): void {
    const size = this.#resolveOptions[this.#candidate]!;
    const offset = this.#probeAt + size;
    this.#send(
      offset,
      Math.min(size, this.options.size - offset),
      "resolve",
      () =>
        `does the device expect offset ${offset}? (it does if it took the ${size}-byte packet ` +
        "at the probe's offset)",
    );
    this.#probeDeadline = this.#now + this.#probeRto();
  }

  #resolveReply(reply: Reply, exact: Sent | undefined): void {
    const size = reply.offset - this.#probeAt;
    if (!this.#resolveOptions.includes(size) || exact?.kind !== "resolve" || !this.#fresh(exact)) {
      return;
    }
    this.#trace.means(() =>
      `the device had taken the ${size}-byte packet: it expected offset ${reply.offset}`
    );
    this.#chooseBlock(size, reply.offset + reply.len);
  }

  #chooseBlock(block: number, confirmed: number): void {
    if (this.options.freshSession && this.#probedBlind && block < this.options.blocks[0]!) {
      // The larger sizes went unanswered while the device was still rebooting into OTA mode,
      // which says nothing about the link: probe them again further on (`#enterTransfer`).
      this.#probedBlind = false;
      this.#trace.step(() =>
        `block size not settled: the larger sizes went unanswered while the device was ` +
        "still rebooting into OTA mode; probing them again further on"
      );
      this.#enterTransfer(confirmed);
      return;
    }
    this.block = block;
    this.#blockKnown = true;
    this.#candidates = [block];
    if (this.options.blocks.length > 1) this.#status(`block size ${block} bytes`);
    else this.#trace.step(() => `block size ${block} bytes (fixed)`);
    this.#enterTransfer(confirmed);
  }

  // ---- transfer ----

  #enterTransfer(confirmed: number): void {
    this.phase = "transfer";
    this.confirmed = confirmed;
    this.#next = confirmed;
    this.#plan.reset(this.#now);
    this.#lastReplyAt = this.#now;
    this.#backoff = 1;
    this.#resync = [];
    this.#resyncIndex = 0;
    this.#holding = false;
    this.#maxSent = confirmed;
    if (
      !this.#blockKnown && confirmed >= SECTOR / 4 && confirmed % this.options.blocks[0]! === 0 &&
      confirmed < this.options.size
    ) {
      // Recovered without knowing the block size yet: probe it here.
      this.phase = "probe";
      this.#probeAt = confirmed;
      this.#candidates = [...this.options.blocks];
      this.#candidate = 0;
      this.#tries = 0;
      this.#staggering = true;
      this.#timedOut.clear();
      this.#trace.step(() => `probing the block size again at offset ${confirmed}`);
      this.#sendProbe();
      return;
    }
    this.#trace.step(() =>
      `sending from offset ${confirmed} in ${
        this.#blockKnown ? this.block : this.options.recoveryLen
      }-byte blocks (a packet ends at the next block boundary: none crosses a 4 KiB sector)`
    );
    this.#maybeFinishTransfer();
  }

  #packetLen(offset: number): number {
    const b = this.#blockKnown ? this.block : this.options.recoveryLen;
    return Math.min(b - offset % b, this.options.size - offset);
  }

  #pump(): void {
    this.#sendAt = undefined;
    if (this.#holding) return;
    // The oldest reply is late: send nothing new until it comes or its timer fires (a
    // packet sent now would only delay the retransmission).
    const oldest = this.#plan.oldest;
    if (oldest && this.pacing.calibrated && this.#now > oldest.end + this.pacing.guardMs / 2) {
      return;
    }
    while (this.phase === "transfer" && this.#next < this.options.size) {
      if (
        !this.#blockKnown && this.#next >= SECTOR / 4 && this.#next % this.options.blocks[0]! === 0
      ) {
        if (this.#plan.flights.length > 0) return;
        this.#enterTransfer(this.#next);
        return;
      }
      const last = this.#plan.last;
      // After a timeout the oldest packet is resent and the pipeline resumes behind it
      // (a plain loss, the usual case); if that fails too, one candidate at a time.
      if (last && this.#resync.length > 0 && this.#resyncIndex > 0) return;
      if (last) {
        const p = this.pacing;
        if (
          !this.options.pace || p.stopAndWait || !p.calibrated ||
          this.#plan.flights.length >= MAX_DEPTH
        ) return;
        const at = this.#plan.nextSendAt()!;
        if (at > this.#now) {
          this.#sendAt = at;
          return;
        }
      }
      this.#sendData(last ? () => this.#pacedWhy(last) : () => this.#unpacedWhy());
    }
  }

  /** Why a packet goes now behind `last`: the aim and what it was computed from. */
  #pacedWhy(last: Flight): string {
    const p = this.pacing;
    return `paced: to arrive ${ms(p.aimMs)} into #${last.seq}'s service (${
      p.phase.toFixed(2)
    } × service ${ms(p.serviceMs(false))}, network ${ms(p.twoWayMs)} both ways), ` +
      `${ms(this.#now - last.sentAt)} after it; ${this.#plan.flights.length + 1} in flight`;
  }

  /** Why a packet goes with nothing in flight before it. */
  #unpacedWhy(): string {
    const p = this.pacing;
    const mode = !this.options.pace
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
    const len = this.#packetLen(offset);
    const kind: SendKind = offset < this.#maxSent ? "retransmit" : "data";
    if (kind === "retransmit") this.retransmits++;
    this.#plan.add(offset, len, this.#send(offset, len, kind, why), this.#now);
    if (offset + len === this.options.size) this.#lastPacketSent = { offset, len };
    this.#next = offset + len;
    this.#maxSent = Math.max(this.#maxSent, this.#next);
  }

  #retransmitAt(f: Flight): number {
    return this.#plan.retransmitAt(f, this.#backoff, this.options.initialRtoMs);
  }

  #lastDeadline(): number {
    return this.#plan.lastDeadline(this.#backoff, this.options.initialRtoMs);
  }

  #transferTimer(): void {
    const oldest = this.#plan.oldest;
    if (oldest && this.#now >= this.#retransmitAt(oldest)) {
      // Send nothing while packets sent after it may still be on the device: a reply to
      // any of them confirms it too (its own reply was lost), and a retransmission that
      // arrived while they wait would be handled inside their signature checks.
      if (this.#now < this.#lastDeadline()) {
        if (!this.#holding) {
          this.#trace.timeout(
            () =>
              `#${oldest.seq} (offset ${oldest.offset}, ${oldest.len} bytes) unanswered ${
                ms(this.#now - oldest.sentAt)
              } after it was sent`,
            () =>
              `holding: a reply to one of the ${
                count(this.#plan.flights.length - 1, "later packet")
              } in flight would confirm it too`,
          );
        }
        this.#holding = true;
        return;
      }
      this.#holding = false;
      this.pacing.onLoss();
      this.#backoff = Math.min(this.#backoff * 2, 16);
      // The device may have accepted some of the packets in flight with their replies
      // lost: then it expects, or repeats, a later offset than the oldest. Try each.
      if (this.#resync.length === 0) {
        // Candidates: what it confirmed last, each packet in flight, and the packet after
        // them (all of them accepted, every reply lost).
        this.#resync = [
          ...new Set([this.confirmed, ...this.#plan.flights.map((f) => f.offset), this.#next]),
        ].filter((o) => o < this.options.size);
        this.#resyncIndex = 0;
      } else {
        this.#resyncIndex++;
      }
      const inFlight = this.#plan.flights.length;
      this.#plan.flights = [];
      this.#next = this.#resync[this.#resyncIndex % this.#resync.length]!;
      this.#trace.timeout(
        () =>
          `#${oldest.seq} (offset ${oldest.offset}, ${oldest.len} bytes)${
            inFlight > 1 ? ` and ${count(inFlight - 1, "packet")} behind it` : ""
          } unanswered`,
        () =>
          `lost: retransmission timer ×${this.#backoff}; resending from offset ${this.#next} ` +
          `(where the device may be: ${this.#resync.join(", ")})`,
      );
      const lostContact = this.#now - this.#lastAnswerAt >= this.options.sessionWaitMs - 1000;
      if (lostContact && this.confirmed > 0 && (this.#alternate = !this.#alternate)) {
        // Nothing confirmed for about PKT_WAIT_MS: the device may have restarted its
        // session, and then it answers a packet at offset 0 only.
        const len = this.#recoveryLenAt(0);
        const seq = this.#send(
          0,
          len,
          "session-probe",
          () =>
            `nothing confirmed for ${
              ((this.#now - this.#lastAnswerAt) / 1000).toFixed(1)
            } s (PKT_WAIT_MS is ${this.options.sessionWaitMs / 1000} s): only a device that ` +
            "restarted its session answers offset 0",
        );
        this.#sessionProbes.add(seq);
        this.#plan.placeholder(0, len, seq, this.#now);
        return;
      }
    }
    this.#pump();
  }

  #transferReply(reply: Reply, exact: Sent | undefined): void {
    if (
      exact?.kind === "session-probe" && this.#sessionProbes.has(reply.seq) && this.#fresh(exact)
    ) {
      this.#trace.means(() => "the session probe was answered: the device restarted its session");
      this.#startCleanup(reply.len, "device restarted its session — cleaning up, resending");
      return;
    }
    const i = this.#plan.flights.findIndex((f) => f.offset === reply.offset && f.len === reply.len);
    if (i < 0) {
      // A late reply for a packet sent before a timeout: it still confirms every byte
      // before its end, if it is one of ours (the layout is fixed by the block size).
      const ours = reply.offset >= this.confirmed && reply.offset + reply.len <= this.#maxSent &&
        reply.len === this.#packetLen(reply.offset);
      if (!ours) {
        this.#trace.means(() => "ignored: no packet of this transfer's layout");
        return;
      }
      this.#trace.means(() =>
        `late reply, after its packet was given up: confirms every byte before ${
          reply.offset + reply.len
        }`
      );
      this.#confirm(reply.offset + reply.len, false);
      return;
    }
    const f = this.#plan.flights[i]!;
    const p = this.pacing;
    let sample = "";
    if (exact && f.offset === this.confirmed) {
      if (exact.sentAt === f.sentAt && f.idle && i === 0) {
        p.addIdleRtt(this.#now - f.sentAt, f.sector);
        if (this.#trace.on) sample = `; idle round trip ${ms(this.#now - f.sentAt)}`;
      }
      // It was sent early enough to wait on the device behind the previous packet: the
      // gap between the two replies is its service time.
      const waited = this.#lastReplyAt !== undefined &&
        exact.sentAt + p.twoWayMs < this.#lastReplyAt;
      if (waited) {
        p.addServiceSample(this.#now - this.#lastReplyAt!, f.sector);
        if (this.#trace.on) {
          sample += `; service ${ms(this.#now - this.#lastReplyAt!)}${
            f.sector ? " with a sector write" : ""
          } (it waited on the device)`;
        }
      }
    }
    this.#trace.means(() =>
      `ack: confirms every byte before ${reply.offset + reply.len}${
        i > 0 ? ` (and ${count(i, "packet")} before it, whose replies were lost)` : ""
      }${sample}`
    );
    p.onAck();
    this.#confirm(reply.offset + reply.len, this.#fresh(exact) && exact!.offset === reply.offset);
  }

  /** Every byte before `upTo` is confirmed; `fresh`: by a reply that is surely current. */
  #confirm(upTo: number, fresh: boolean): void {
    this.confirmed = upTo;
    this.#resync = [];
    this.#holding = false;
    this.#sessionProbes.clear();
    this.#backoff = 1;
    this.#lastReplyAt = this.#now;
    this.#plan.confirm(upTo, this.#now);
    // Send next what the device expects next, unless it is already in flight.
    if (this.#plan.oldest?.offset !== upTo) {
      this.#plan.flights = [];
      this.#next = upTo;
    }
    this.#maybeFinishTransfer(fresh);
  }

  #maybeFinishTransfer(fresh = true): void {
    if (this.confirmed < this.options.size) {
      this.#pump();
    } else if (fresh) {
      this.#startEnding();
    } else {
      // Complete, but only by a reply that may predate a session restart: repeat the last
      // packet and send the end packet only on its answer.
      this.#next = this.#lastPacket().offset;
      this.#pump();
    }
  }

  // ---- clean-up: get back to a clean device from an unknown session state ----

  #startCleanup(confirmedAtZero: number, message: string): void {
    if (this.recoveries >= MAX_RECOVERIES) {
      this.#fail({ kind: "unstable", recoveries: this.recoveries });
      return;
    }
    this.recoveries++;
    this.#sessionProbes.clear();
    this.#cleanedUpOnce = true;
    this.#status(message);
    this.#trace.step(() =>
      `recovery ${this.recoveries} of at most ${MAX_RECOVERIES}: offset 0 is confirmed in the ` +
      "current session, so an end packet now flushes inside the app region and reboots the " +
      "device into a clean OTA session"
    );
    this.phase = "cleanup";
    this.#plan.flights = [];
    this.#cleanupConfirmed = confirmedAtZero;
    this.#cleanupEnds = 0;
    this.#cleanupEnd();
  }

  #cleanupEnd(): void {
    this.#cleanupEnds++;
    this.#sendEnd(
      "cleanup",
      () =>
        `every byte before ${this.#cleanupConfirmed} is confirmed in this session: the flush ` +
        "lands in the app region",
    );
    this.#cleanupStage = "check-left";
    this.#cleanupTries = 0;
    this.#cleanupAt = this.#now + this.#settleMs();
  }

  /** Time for an end packet to be taken, or a probe to come back. */
  #settleMs(): number {
    return Math.max(100, 3 * (this.pacing.serviceMs(true) + this.pacing.twoWayMs));
  }

  #cleanupTimer(): void {
    if (this.#cleanupStage === "check-left") {
      if (this.#cleanupTries >= 3 || this.#cleanupConfirmed >= this.options.size) {
        this.#cleanupStage = "await-fresh";
        this.#trace.step(() =>
          "the old session does not answer: the end packet was taken; waiting for the device " +
          "back in OTA mode"
        );
      } else {
        // The next offset of the old session: accepted only if the end packet was lost;
        // a fresh session drops it (it expects offset 0).
        this.#cleanupTries++;
        const at = this.#cleanupConfirmed;
        this.#send(
          at,
          this.#recoveryLenAt(at),
          "cleanup-check",
          () =>
            `is the old session still open? Only if the end packet was lost is offset ${at} ` +
            "taken (a fresh session drops it)",
        );
        this.#cleanupAt = this.#now + this.#settleMs();
        return;
      }
    }
    this.#send(
      0,
      this.#recoveryLenAt(0),
      "probe",
      () => "is the device back in OTA mode? A clean session answers offset 0",
    );
    this.#cleanupAt = this.#now + Math.max(150, this.#settleMs());
  }

  #recoveryLenAt(offset: number): number {
    const b = this.options.recoveryLen;
    return Math.min(b - offset % b, this.options.size - offset);
  }

  #cleanupReply(reply: Reply, exact: Sent | undefined): void {
    if (!this.#fresh(exact)) return;
    if (
      this.#cleanupStage === "check-left" && reply.offset === this.#cleanupConfirmed &&
      reply.len > 0
    ) {
      // Still in the old session: the end packet was lost. Everything before the next
      // offset is confirmed in this session again, so the end packet may go.
      this.#cleanupConfirmed = reply.offset + reply.len;
      this.#trace.means(() =>
        "the old session is still open (the end packet was lost): end packet again"
      );
      if (this.#cleanupEnds >= 5) {
        this.#fail({ kind: "end-ignored" });
        return;
      }
      this.#cleanupEnd();
      return;
    }
    if (reply.offset === 0 && (this.#cleanupStage === "await-fresh" || this.#cleanupTries > 0)) {
      this.#trace.means(() => "offset 0 answered: a fresh session with an empty buffer");
      this.#status("device is back in OTA mode with a clean buffer");
      this.#enterTransfer(reply.len);
    }
  }

  // ---- ending and boot check ----

  #startEnding(): void {
    this.phase = "ending";
    this.#plan.flights = [];
    this.#sendAt = undefined;
    this.#endsSent = 0;
    this.#sendFinalEnd();
  }

  #sendFinalEnd(): void {
    this.#endsSent++;
    this.#sendEnd(
      "final",
      () =>
        `every byte (${this.options.size}) confirmed in the device's current session` +
        (this.#endsSent > 1 ? `; try ${this.#endsSent}` : ""),
    );
    this.#endSentAt = this.#now;
    this.#livenessTries = 0;
    this.#livenessAt = this.#now + this.#settleMs();
  }

  #lastPacket(): { offset: number; len: number } {
    if (this.#lastPacketSent) return this.#lastPacketSent;
    const size = this.options.size;
    const b = this.#blockKnown ? this.block : this.options.recoveryLen;
    const offset = Math.floor((size - 1) / b) * b;
    return { offset, len: size - offset };
  }

  #sendLiveness(): void {
    const { offset, len } = this.#lastPacket();
    this.#send(
      offset,
      len,
      "liveness",
      () => "still in the session? Only if the end packet was lost is the last packet answered",
    );
  }

  #livenessTimer(): void {
    if (this.#livenessTries >= 3) {
      // Three repeats of the last packet went unanswered: the device left the session.
      this.#trace.timeout(
        () => "three repeats of the last packet unanswered",
        () =>
          "the device took the end packet and left the session" +
          (this.options.bootCheck
            ? `: boot check for ${this.options.bootCheckMs / 1000} s after the end packet`
            : " (boot check off)"),
      );
      if (!this.options.bootCheck) {
        this.#done("skipped");
        return;
      }
      this.phase = "bootcheck";
      this.#status("checking that the device boots the new image");
      this.#bootProbes = 0;
      this.#bootProbeAt = this.#now;
      this.#bootTimer();
      return;
    }
    this.#livenessTries++;
    this.#sendLiveness();
    this.#livenessAt = this.#now + this.#settleMs();
  }

  #bootTimer(): void {
    if (this.#now >= this.#endSentAt + this.options.bootCheckMs) {
      this.#trace.step(() =>
        `boot check passed: nothing answered offset 0 for ${
          this.options.bootCheckMs / 1000
        } s after the end packet (${this.#bootProbes} probes)`
      );
      this.#done("passed");
      return;
    }
    if (this.#now < this.#bootProbeAt) return;
    // Only a device whose new image failed boot8266's check answers offset 0 again.
    if (++this.#bootProbes % 4 === 0) this.#sendLiveness();
    else {
      this.#send(
        0,
        this.#packetLen(0),
        "boot-probe",
        () => "only a device whose new image failed boot8266's check answers offset 0 again",
      );
    }
    this.#bootProbeAt = this.#now + 250;
  }

  #afterEndReply(reply: Reply, exact: Sent | undefined): void {
    const last = this.#lastPacket();
    if (
      reply.offset === last.offset && reply.len === last.len && exact?.kind === "liveness" &&
      this.#fresh(exact)
    ) {
      // Still in the session with every byte confirmed: the end packet was lost.
      this.#trace.means(() =>
        "the last packet was answered: still in the session, the end packet was lost"
      );
      if (this.#endsSent >= 3) {
        this.#fail({ kind: "end-ignored" });
        return;
      }
      this.phase = "ending";
      this.#sendFinalEnd();
      return;
    }
    if (this.phase === "bootcheck" && reply.offset === 0 && reply.len > 0 && this.#fresh(exact)) {
      if (this.attempts >= this.options.maxAttempts) {
        this.#fail({ kind: "boot-failed", attempts: this.attempts });
        return;
      }
      this.#trace.means(() =>
        "offset 0 answered after the end packet: boot8266 rejected the image"
      );
      this.attempts++;
      this.#status(
        "the device did not boot the new image (it is back in OTA mode): sending it once more",
      );
      this.#maxSent = 0;
      this.#enterTransfer(reply.len);
    }
  }

  // ---- plumbing ----

  #send(offset: number, len: number, kind: SendKind, why: Why = () => kind): number {
    // A packet with len 0 IS an end packet to the device (rule 2): never by accident.
    if (len <= 0 || offset + len > this.options.size) {
      throw new RangeError(`bug: a ${kind} packet at ${offset} of length ${len}`);
    }
    const seq = ++this.#seq;
    this.#sent.set(seq, { offset, len, sentAt: this.#now, kind });
    if (this.#sent.size > 4096) this.#sent.delete(this.#sent.keys().next().value!);
    this.packetsSent++;
    this.#trace.send(seq, offset, len, kind, why);
    this.#actions.push({ type: "send", seq, offset, len, kind });
    return seq;
  }

  #sendEnd(reason: "final" | "cleanup", why: Why): void {
    const seq = ++this.#seq;
    this.#trace.end(seq, reason, why);
    this.#actions.push({ type: "end", seq, reason });
  }

  #status(message: string): void {
    this.#trace.step(() => message);
    this.#actions.push({ type: "status", message });
  }

  #done(bootCheck: TransferSummary["bootCheck"]): void {
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
        transferMs: this.#endSentAt - this.#startedAt,
      },
    });
  }

  #fail(failure: TransferFailure): void {
    this.phase = "finished";
    this.#finished = true;
    this.#trace.step(() => `failed: ${failure.kind}`);
    this.#actions.push({ type: "failed", failure });
  }

  #flush(): TransferAction[] {
    this.#trace.pacing(() => this.pacing.snapshot());
    const out = this.#actions;
    this.#actions = [];
    return out;
  }
}
