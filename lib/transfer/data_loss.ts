/**
 * What the data phase (`phase_data.ts`) does when the oldest packet in flight is overdue:
 * unpaced, hold while a later packet may still confirm it (its own reply lost); then count
 * it lost, back off, and resend from where the device may be (it may have taken packets
 * whose replies were lost); and after about PKT_WAIT_MS without an answer, ask with a
 * session probe at offset 0 whether the device restarted its session (docs/device.md,
 * "Session restarts keep stale bytes").
 */
import type { EngineCore } from "./engine_core.ts";
import type { Flight } from "./flight_plan.ts";
import { count, formatMs as ms } from "./transfer_trace.ts";

/** The retransmission timer doubles per loss up to this factor. */
const MAX_BACKOFF = 16;

/**
 * Resends from the confirmed offset before trying the other places the device may be. A
 * resend lost on its way is as likely as the first loss; the device being further on takes
 * every reply to the packets it took lost as well. The pipeline behind a resend covers
 * those places too: the device answers the packet it took last again.
 */
const RESENDS_FROM_CONFIRMED = 2;

/** After an overdue packet: hold, or resend from `from` (unless a session probe went). */
export type Overdue = "hold" | { from: number; sessionProbe: boolean };

export class LossRecovery {
  readonly #c: EngineCore;
  #backoff = 1;
  /** Session probes go out every other loss. */
  #alternate = false;
  /** While nothing is answered: the offsets the device may expect or repeat, tried in turn. */
  #resync: number[] = [];
  #resyncIndex = 0;
  /** The oldest packet is overdue; later ones may still be answered (a lost reply). */
  #holding = false;
  /** Session probes sent since the last progress: only their replies mean a restart. */
  #sessionProbes = new Set<number>();

  constructor(core: EngineCore) {
    this.#c = core;
  }

  get holding(): boolean {
    return this.#holding;
  }

  /**
   * The oldest unconfirmed offset was resent twice, each time with the pipeline behind it,
   * unanswered: candidates go one at a time, none behind.
   */
  get searching(): boolean {
    return this.#resync.length > 0 && this.#resyncIndex > RESENDS_FROM_CONFIRMED - 1;
  }

  /** A new start of the data phase. */
  reset(): void {
    this.#backoff = 1;
    this.#resync = [];
    this.#resyncIndex = 0;
    this.#holding = false;
  }

  /** A reply confirmed bytes: the link works. */
  progress(): void {
    this.#resync = [];
    this.#holding = false;
    this.#sessionProbes.clear();
    this.#backoff = 1;
  }

  /** A clean-up starts: replies to earlier session probes mean nothing any more. */
  forgetSessionProbes(): void {
    this.#sessionProbes.clear();
  }

  /** `seq` is a session probe sent since the last progress. */
  isSessionProbe(seq: number): boolean {
    return this.#sessionProbes.has(seq);
  }

  retransmitAt(f: Flight): number {
    return this.#c.plan.retransmitAt(f, this.#backoff, this.#c.options.initialRtoMs);
  }

  #lastDeadline(): number {
    return this.#c.plan.lastDeadline(this.#backoff, this.#c.options.initialRtoMs);
  }

  /** When the packets in flight next need the timer. */
  deadline(): number | undefined {
    const oldest = this.#c.plan.oldest;
    if (!oldest) return undefined;
    return this.#holding ? this.#lastDeadline() : this.retransmitAt(oldest);
  }

  /** `oldest` is past its retransmission time; `next`: the offset that was to go next. */
  overdue(oldest: Flight, next: number): Overdue {
    const c = this.#c;
    // Unpaced, send nothing while packets sent after it may still be on the device: a
    // retransmission that arrived while they wait would be handled inside their signature
    // checks (and a reply to any of them confirms it too). Paced, steady or not, the
    // retransmission goes behind the last of them (`FlightPlan.pacedBehind`), into no
    // check: held until they were all overdue, it left a quiet board idle 70-100 ms when
    // one of them filled a sector (under a CPU hog, 0.2-2.3 s per 160 KiB).
    const paced = c.options.pace && c.pacing.calibrated && !c.pacing.stopAndWait;
    if (!paced && c.now < this.#lastDeadline()) {
      if (!this.#holding) {
        c.trace.timeout(
          () =>
            `#${oldest.seq} (offset ${oldest.offset}, ${oldest.len} bytes) unanswered ${
              ms(c.now - oldest.sentAt)
            } after it was sent`,
          () =>
            `holding: a reply to one of the ${
              count(c.plan.flights.length - 1, "later packet")
            } in flight would confirm it too`,
        );
      }
      this.#holding = true;
      return "hold";
    }
    this.#holding = false;
    c.pacing.onLoss();
    this.#backoff = Math.min(this.#backoff * 2, MAX_BACKOFF);
    // The device may have accepted some of the packets in flight with their replies
    // lost: then it expects, or repeats, a later offset than the oldest. Try each.
    if (this.#resync.length === 0) {
      // Candidates: what it confirmed last, each packet in flight, and the packet after
      // them (all of them accepted, every reply lost).
      this.#resync = [
        ...new Set([c.confirmed, ...c.plan.flights.map((f) => f.offset), next]),
      ].filter((o) => o < c.options.size);
      this.#resyncIndex = 0;
    } else {
      this.#resyncIndex++;
    }
    const inFlight = c.plan.flights.length;
    c.plan.flights = [];
    const candidate = Math.max(0, this.#resyncIndex - (RESENDS_FROM_CONFIRMED - 1));
    const from = this.#resync[candidate % this.#resync.length]!;
    c.trace.timeout(
      () =>
        `#${oldest.seq} (offset ${oldest.offset}, ${oldest.len} bytes)${
          inFlight > 1 ? ` and ${count(inFlight - 1, "packet")} behind it` : ""
        } unanswered`,
      () =>
        `lost: retransmission timer ×${this.#backoff}; resending from offset ${from} ` +
        `(where the device may be: ${this.#resync.join(", ")})`,
    );
    return { from, sessionProbe: this.#askSession() };
  }

  /**
   * Nothing confirmed for about PKT_WAIT_MS: the device may have restarted its session,
   * and then it answers a packet at offset 0 only. Every other loss, asks so.
   */
  #askSession(): boolean {
    const c = this.#c;
    const lostContact = c.now - c.lastAnswerAt >= c.options.sessionWaitMs - 1000;
    if (!lostContact || c.confirmed <= 0 || !(this.#alternate = !this.#alternate)) return false;
    const len = c.recoveryLenAt(0);
    const seq = c.send(
      0,
      len,
      "session-probe",
      () =>
        `nothing confirmed for ${((c.now - c.lastAnswerAt) / 1000).toFixed(1)} s (PKT_WAIT_MS ` +
        `is ${c.options.sessionWaitMs / 1000} s): only a device that restarted its session ` +
        "answers offset 0",
    );
    this.#sessionProbes.add(seq);
    c.plan.placeholder(0, len, seq, c.now);
    return true;
  }
}
