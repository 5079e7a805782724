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

function lowQuantile(samples: number[], q: number): number | undefined {
  if (samples.length === 0) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

export class PacingModel {
  #normal: number[] = [];
  #sector: number[] = [];
  #idleRtt: { rtt: number; sector: boolean }[] = [];
  /** How far into the previous packet's service the next one is aimed (fraction). */
  phase = 0.8;
  static readonly MIN_PHASE = 0.7;
  static readonly MAX_PHASE = 1.0;
  #cleanStreak = 0;
  #recentLosses: boolean[] = [];

  /** A reply gap while the device was busy back to back: one service time. */
  addServiceSample(ms: number, sector: boolean): void {
    const list = sector ? this.#sector : this.#normal;
    list.push(ms);
    if (list.length > WINDOW) list.shift();
  }

  /** A round trip of a packet sent to an idle device: 2 × one-way + service time. */
  addIdleRtt(ms: number, sector: boolean): void {
    this.#idleRtt.push({ rtt: ms, sector });
    if (this.#idleRtt.length > WINDOW) this.#idleRtt.shift();
  }

  /** Service time of a packet without a sector write (a low quantile of the gaps). */
  get normalServiceMs(): number | undefined {
    return lowQuantile(this.#normal, 0.5);
  }

  get sectorServiceMs(): number | undefined {
    return lowQuantile(this.#sector, 0.5) ??
      this.#idleRtt.filter((s) => s.sector).map((s) => s.rtt).sort((a, b) => b - a)[0];
  }

  /**
   * Two one-way delays. Underestimated on purpose (the smallest idle round trip minus the
   * service time): an error makes the next packet arrive later, never earlier.
   */
  get twoWayMs(): number {
    const s = this.normalServiceMs;
    const normal = this.#idleRtt.filter((x) => !x.sector).map((x) => x.rtt);
    if (s === undefined || normal.length === 0) return 0;
    return Math.max(0, Math.min(...normal) - s);
  }

  serviceMs(sector: boolean): number {
    const n = this.normalServiceMs ?? this.#smallestIdleRtt() ?? 0;
    // Until a sector write has been timed, assume a slow one: a late estimate only
    // delays the next packet, an early one makes it collide.
    return sector ? Math.max(n, this.sectorServiceMs ?? n + UNKNOWN_SECTOR_WRITE_MS) : n;
  }

  #smallestIdleRtt(): number | undefined {
    const all = this.#idleRtt.map((s) => s.rtt);
    return all.length ? Math.min(...all) : undefined;
  }

  /** Ready to pipeline: enough idle round trips to know the network's share of them. */
  get calibrated(): boolean {
    return this.#idleRtt.filter((s) => !s.sector).length >= CALIBRATION_SAMPLES;
  }

  /** Something was measured: timeouts can follow the device instead of a fixed guess. */
  get measured(): boolean {
    return this.#idleRtt.length > 0;
  }

  /** Send no new packet until the previous one is confirmed. */
  get stopAndWait(): boolean {
    const recent = this.#recentLosses.slice(-16);
    return recent.filter(Boolean).length >= 4;
  }

  /** How long after the device starts the previous packet the next one should arrive. */
  get aimMs(): number {
    return this.phase * this.serviceMs(false);
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
      idleSamples: this.#idleRtt.filter((s) => !s.sector).length,
      calibrationSamples: CALIBRATION_SAMPLES,
      calibrated: this.calibrated,
      recentLosses: this.#recentLosses.slice(-16).filter(Boolean).length,
      stopAndWait: this.stopAndWait,
    };
  }

  onLoss(): void {
    this.#note(true);
    this.#cleanStreak = 0;
    // One loss in a while is the network; losses close together may be our packets
    // meeting on the device: aim later.
    if (this.#recentLosses.slice(-16).filter(Boolean).length >= 2) {
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

  #note(lost: boolean): void {
    this.#recentLosses.push(lost);
    if (this.#recentLosses.length > 32) this.#recentLosses.shift();
  }
}
