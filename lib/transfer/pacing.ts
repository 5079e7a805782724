/**
 * What the sender learns from the acknowledgements: the device's service time per packet
 * (normal, and with a sector write), the network round trip, and where to aim the next
 * packet so it reaches the device just after the device has begun checking the previous
 * one's signature (docs/device.md, "Re-entrancy"). Times in ms, in the sender's clock.
 */
import type { PacingSnapshot } from "./trace_record.ts";

const WINDOW = 24;
const UNKNOWN_SECTOR_WRITE_MS = 70;
/** Idle round trips (stop-and-wait packets) before pipelining. */
const CALIBRATION_SAMPLES = 3;
/** Packets in flight: at least (what the logging board needs), at most (a loss wastes them). */
const MIN_DEPTH = 3;
const MAX_DEPTH = 8;
/** Service samples before their scatter is judged, and the scatter (of a service) that is steady. */
const STEADY_SAMPLES = 8;
const STEADY_SPREAD = 0.15;
/**
 * How long before the previous packet's reply a packet must have been due on the device for
 * its reply gap to time the device alone. Packets paced into a check arrive a fraction of a
 * millisecond before it ends; those behind a sector write tens of milliseconds before.
 */
const CLEAN_MARGIN_MS = 5;
/**
 * The longest a send call may take for its reply to time a round trip to a fraction of a
 * millisecond. The datagram left somewhere inside the call, and its round trip is timed
 * from the call's end: a sender preempted right after the system call (a busy machine:
 * 17 % of sends, up to 5.6 ms; the first sends of a run take 0.4-1 ms) saw round trips of
 * 10.7 ms on a link whose least is 14 (`addIdleRtt`).
 */
const PRECISE_SEND_MS = 0.3;

/** Whether a send call that took `sendMs` times its reply's round trip (PRECISE_SEND_MS). */
export function preciseSend(sendMs = 0): boolean {
  return sendMs <= PRECISE_SEND_MS;
}
/** A reply gap under this share of the service measured so far times no device. */
const IMPLAUSIBLE = 0.5;
/** Clean samples before they replace the recent gaps. */
const CLEAN_SAMPLES = 3;
/** Recent gaps the estimate follows until then, and the latest it aims into the service. */
const RAMP_GAPS = 6;
const RAMP_PHASE = 0.8;

/** Appends `x`, keeping the last `WINDOW` entries. */
function keepLast<T>(list: T[], x: T): void {
  list.push(x);
  if (list.length > WINDOW) list.shift();
}

function lowQuantile(samples: number[], q: number): number | undefined {
  if (samples.length === 0) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** How much `samples` scatter: their median absolute deviation. */
function spread(samples: number[]): number | undefined {
  const m = lowQuantile(samples, 0.5);
  return m === undefined ? undefined : lowQuantile(samples.map((x) => Math.abs(x - m)), 0.5);
}

export class PacingModel {
  #normal: number[] = [];
  #clean: number[] = [];
  #sector: number[] = [];
  /** `rtt` at least, `upTo` at most (a slow send's datagram left somewhere in its call). */
  #idleRtt: { rtt: number; upTo: number; sector: boolean; precise: boolean }[] = [];
  /** How far into the previous packet's service the next one is aimed (fraction). */
  phase = 0.8;
  static readonly MIN_PHASE = 0.7;
  static readonly MAX_PHASE = 1.0;
  #cleanStreak = 0;
  #recentLosses: boolean[] = [];
  /** Losses came close together: idle round trips no longer show the replies steady. */
  #idleNotSteady = false;

  /**
   * A reply gap while the device was busy back to back: one service time. `margin`: how
   * long before the previous reply the packet was due on the device.
   */
  addServiceSample(ms: number, sector: boolean, margin = 0): void {
    // Replies that come bunched after a stall (of this machine, the link, the device's
    // host) are gaps that time the stall: two 0.5 ms apart once set a quiet board's 4 ms
    // service to 0.6 ms, and every packet after met another in a signature check. The gap
    // of a packet that surely waited (behind a sector write) is kept all the same: while
    // the estimate still comes down from a whole round trip, the service may be under half
    // of it, and that gap measures it (dropped, a quiet board's 4.0 ms against an estimate
    // of 8.0 kept the estimate at 7.9 ms for two sectors on real sockets).
    const known = this.normalServiceMs;
    // Asked before and after the gap is kept: the network's share the margin is judged by
    // comes from the service estimate, which the gap moves.
    const surelyWaited = () => !sector && this.#sureMargin(margin) >= CLEAN_MARGIN_MS;
    if (!sector && known !== undefined && ms < IMPLAUSIBLE * known && !surelyWaited()) return;
    keepLast(sector ? this.#sector : this.#normal, ms);
    if (surelyWaited()) keepLast(this.#clean, ms);
  }

  /**
   * `margin` (from the network's share of a round trip as the model has it) if the network
   * took all of the smallest idle round trip. While the service is overestimated the share
   * is too small: at first none (the whole round trip taken as service), every packet
   * looked due long before the previous reply, and the gaps of packets that never waited
   * (as long as their send interval) were taken as the device's: under a CPU hog a quiet
   * board was paced at 14 ms a packet, for a 4 ms service, for seconds.
   */
  #sureMargin(margin: number): number {
    const rtts = this.#timingIdleRtts;
    return rtts.length ? margin - (Math.min(...rtts) - this.twoWayMs) : -Infinity;
  }

  /**
   * A round trip of a packet sent to an idle device: 2 × one-way + service time, timed from
   * the end of its send call, which took `sendMs`. Precise if that was short
   * (PRECISE_SEND_MS); otherwise the round trip is anywhere from `ms` (never below 0) to
   * `ms + sendMs`.
   */
  addIdleRtt(ms: number, sector: boolean, sendMs = 0): void {
    const precise = preciseSend(sendMs);
    const rtt = Math.max(0, ms);
    keepLast(this.#idleRtt, { rtt, upTo: precise ? rtt : ms + sendMs, sector, precise });
  }

  /**
   * Service time of a packet without a sector write: the median gap of packets that surely
   * waited on the device (mostly the first behind a sector write), once three are known. A
   * packet paced into a check may arrive a little after it ended, and its gap is then
   * longer: a median of such gaps runs high, and a pipeline planned from it runs the
   * device that much slower than it can go, the error growing with each packet in flight.
   *
   * Until then, the second smallest of the last six gaps. The pipeline starts from an
   * estimate that is too long (a whole idle round trip) and feeds the device at 0.8 of it:
   * a packet that did not wait makes a gap as long as its send interval, so the estimate
   * comes down by a fifth every two packets, where a median of 24 lagged behind (a quiet
   * board's first three sectors went at 10 ms a packet, not 4). The second smallest, and
   * none before there are two, as one gap may be short by a reply's delay: the reply
   * before it held up 2 ms behind a sector write made a first gap of 2.0 ms for a 4 ms
   * service, and packets planned on it met in pairs in each other's checks.
   */
  get normalServiceMs(): number | undefined {
    if (!this.#ramping) return lowQuantile(this.#clean, 0.5);
    return this.#normal.slice(-RAMP_GAPS).sort((a, b) => a - b)[1];
  }

  /** The median of every reply gap without a sector write. */
  get #gapMedian(): number | undefined {
    return lowQuantile(this.#normal, 0.5);
  }

  /** Idle round trips of packets without a sector write. */
  get #normalIdle(): { rtt: number; precise: boolean }[] {
    return this.#idleRtt.filter((x) => !x.sector);
  }

  /**
   * Those the network's share is taken from: the precise ones once there are any. It comes
   * from the smallest, and one that came out short by a slow send (3.4 ms, a busy machine)
   * put every packet after it that much later than aimed: the device waited for each one.
   */
  get #timingIdleRtts(): number[] {
    const normal = this.#normalIdle;
    const precise = normal.filter((x) => x.precise);
    return (precise.length > 0 ? precise : normal).map((x) => x.rtt);
  }

  /**
   * Service time of a packet that fills a sector: a high quantile of the gaps. The packets
   * behind it are planned from when the write ends; a write taken as shorter than it is
   * puts them on the device early, into each other's checks (one taken as longer costs
   * the device that much idle time, once a sector).
   */
  get sectorServiceMs(): number | undefined {
    return lowQuantile(this.#sector, 0.8) ??
      this.#idleRtt.filter((s) => s.sector).map((s) => s.upTo).sort((a, b) => b - a)[0];
  }

  /**
   * Two one-way delays. Underestimated on purpose (the smallest idle round trip minus the
   * service time): an error makes the next packet arrive later, never earlier.
   */
  get twoWayMs(): number {
    const s = this.normalServiceMs;
    const normal = this.#timingIdleRtts;
    if (s === undefined || normal.length === 0) return 0;
    return Math.max(0, Math.min(...normal) - s);
  }

  serviceMs(sector: boolean): number {
    const n = this.normalServiceMs ?? this.#smallestIdleRtt() ?? 0;
    // Until a sector write has been timed, assume a slow one: a late estimate only
    // delays the next packet, an early one makes it collide.
    return sector ? Math.max(n, this.sectorServiceMs ?? n + UNKNOWN_SECTOR_WRITE_MS) : n;
  }

  /**
   * The service until gaps time it: the smallest idle round trip, each as long as it may
   * have been. Timed from the end of a send call the sender was preempted in (7 ms on a
   * busy machine), a reply came "-4.2 ms" after its packet: taken as the service, every
   * packet after it left at once.
   */
  #smallestIdleRtt(): number | undefined {
    const all = this.#idleRtt.map((s) => s.upTo);
    return all.length ? Math.min(...all) : undefined;
  }

  /**
   * How much the measured service times scatter (their median absolute deviation): the
   * jitter of the replies that time the device. Unknown until a few are measured.
   */
  get serviceSpreadMs(): number | undefined {
    return this.#normal.length < STEADY_SAMPLES ? undefined : spread(this.#normal);
  }

  /**
   * Replies time the device closely (their scatter is a small part of a service time):
   * the plan can run further ahead of them (a deeper pipeline, a resend paced behind the
   * packets in flight instead of waiting them out). On a jittery link or a busy machine
   * a packet sent on a prediction is more likely to meet a delayed one on the device.
   */
  get steady(): boolean {
    const gaps = this.serviceSpreadMs;
    if (gaps !== undefined && gaps <= STEADY_SPREAD * this.#gapMedian!) return true;
    // Until the window is full its gaps include those of the ramp (send intervals, from a
    // whole round trip down), and a device the pipeline does not yet keep busy makes few
    // others: a quiet board at MTU 548 went 0.45 s (a tenth of its run) 3 packets deep,
    // idle a fifth of the time, on replies that scattered by 0.2 ms. The round trips of
    // packets that reached it idle time it as well, until losses come close together
    // (packets delayed into each other's checks, on a jittery link): then the gaps alone.
    const idle = this.#idleSpreadMs;
    return this.#normal.length < WINDOW && !this.#idleNotSteady &&
      idle !== undefined && idle <= STEADY_SPREAD * this.serviceMs(false);
  }

  /**
   * How much later than the quickest of the latest idle round trips most of them come (the
   * 0.75 quantile), once there are enough. Their median absolute deviation took a link
   * with 0.5 ms of jitter each way for steady in 83 % of the windows of 8.
   */
  get #idleSpreadMs(): number | undefined {
    const rtts = this.#normalIdle.slice(-STEADY_SAMPLES).map((x) => x.rtt);
    return rtts.length < STEADY_SAMPLES ? undefined : lowQuantile(rtts, 0.75)! - Math.min(...rtts);
  }

  /**
   * How much later than the smallest idle round trip a reply may come without the device
   * being later (the network's and both machines' scheduling jitter): the median idle
   * round trip's excess over the smallest, at least half a millisecond.
   */
  get jitterMs(): number {
    const normal = this.#timingIdleRtts;
    if (normal.length === 0) return 0.5;
    return Math.max(0.5, lowQuantile(normal, 0.5)! - Math.min(...normal));
  }

  /**
   * Packets in flight: enough to cover a round trip while the device works (the network's
   * share of it, its jitter, the packet on the device and the one waiting), plus one.
   */
  get depth(): number {
    const s = this.serviceMs(false);
    if (!(s > 0) || !this.steady) return MIN_DEPTH;
    const needed = Math.ceil((this.twoWayMs + this.jitterMs + 2 * s) / s) + 1;
    return Math.min(MAX_DEPTH, Math.max(MIN_DEPTH, needed));
  }

  /** Ready to pipeline: enough idle round trips to know the network's share of them. */
  get calibrated(): boolean {
    return this.#normalIdle.length >= CALIBRATION_SAMPLES;
  }

  /** Something was measured: timeouts can follow the device instead of a fixed guess. */
  get measured(): boolean {
    return this.#idleRtt.length > 0;
  }

  /** Send no new packet until the previous one is confirmed. */
  get stopAndWait(): boolean {
    return this.#recentLossCount >= 4;
  }

  /**
   * How long after the device starts the previous packet the next one should arrive. While
   * the estimate still comes down from a whole round trip (no gaps of packets that surely
   * waited yet), at most 0.8 of it: a packet that did not wait makes a gap as long as its
   * send interval, so aimed later after a few network losses (phase 1.0) the estimate
   * stopped falling. Under a CPU hog a quiet board was paced at 13.5 ms a packet, for a 4
   * ms service, for 1.6 s.
   */
  get aimMs(): number {
    return (this.#ramping ? Math.min(this.phase, RAMP_PHASE) : this.phase) * this.serviceMs(false);
  }

  /**
   * The aim behind a packet: into its signature check as `aimMs` says, unless it fills a
   * sector. Then the device writes flash for tens of milliseconds after the check: the
   * next packet is aimed halfway into the write, where it waits all the same and a device
   * running a few milliseconds behind the plan cannot catch it before the check began.
   */
  aimBehind(sector: boolean): number {
    if (!sector) return this.aimMs;
    const normal = this.serviceMs(false);
    return Math.max(this.aimMs, normal + (this.serviceMs(true) - normal) / 2);
  }

  /** Retransmission margin beyond the predicted reply. */
  get guardMs(): number {
    const s = this.serviceMs(false);
    return Math.min(250, Math.max(6, 0.25 * s + 0.25 * this.twoWayMs + 3));
  }

  /** What the model believes now, for the trace. */
  snapshot(): PacingSnapshot {
    return {
      serviceMs: this.normalServiceMs,
      sectorServiceMs: this.sectorServiceMs,
      twoWayMs: this.twoWayMs,
      aimMs: this.aimMs,
      phase: this.phase,
      guardMs: this.guardMs,
      idleSamples: this.#normalIdle.length,
      calibrationSamples: CALIBRATION_SAMPLES,
      calibrated: this.calibrated,
      recentLosses: this.#recentLossCount,
      stopAndWait: this.stopAndWait,
      depth: this.depth,
      steady: this.steady,
    };
  }

  onLoss(): void {
    const pipelining = !this.stopAndWait;
    this.#note(true);
    this.#cleanStreak = 0;
    // Losses close together may come from a service estimate that is too short, and
    // nothing corrects it: every packet planned on it reaches the device inside the
    // previous one's check and is lost, and stop-and-wait times no service. Two replies
    // held up 6 ms as the pipeline started set a logging board's 17 ms service to 11 ms,
    // and 165 packets of 192 met another in a check. While the estimate still comes down
    // (it follows the second smallest recent gap) the two smallest go; at stop-and-wait it
    // is measured again from the idle round trip down, as at the start.
    if (pipelining && this.stopAndWait) {
      this.#normal = [];
      this.#clean = [];
    } else if (this.#ramping && this.#recentLossCount >= 2) {
      this.#normal = this.#normal.slice(-RAMP_GAPS).sort((a, b) => a - b).slice(2);
    }
    // One loss in a while is the network; losses close together may be our packets
    // meeting on the device: aim later.
    if (this.#recentLossCount >= 2) {
      this.#idleNotSteady = true;
      this.phase = Math.min(PacingModel.MAX_PHASE, this.phase + 0.1);
    }
  }

  onAck(): void {
    this.#note(false);
    if (++this.#cleanStreak >= 16) {
      this.#cleanStreak = 0;
      this.phase = Math.max(PacingModel.MIN_PHASE, this.phase - 0.02);
    }
  }

  /** Fewer gaps of packets that surely waited than the estimate needs: it still comes down. */
  get #ramping(): boolean {
    return this.#clean.length < CLEAN_SAMPLES;
  }

  get #recentLossCount(): number {
    return this.#recentLosses.slice(-16).filter(Boolean).length;
  }

  #note(lost: boolean): void {
    this.#recentLosses.push(lost);
    if (this.#recentLosses.length > 32) this.#recentLosses.shift();
  }
}
