/**
 * What the transfer engine records of its decisions (`--verbose`, and tests): one record
 * per datagram it asks for, per reply, per timeout, per pacing change and per step. The
 * engine builds them (`engine_trace.ts`), `transfer_trace.ts` renders them as lines.
 */

/** What a datagram is for (in the records and in the engine's actions). */
export type SendKind =
  | "probe"
  | "resolve"
  | "data"
  | "retransmit"
  | "session-probe"
  | "cleanup-check"
  | "liveness"
  | "boot-probe";

/** What the pacing model believes, in ms (see `pacing.ts`). */
export interface PacingSnapshot {
  /** Service time of a packet without a sector write, if measured. */
  serviceMs?: number;
  /** Service time of a packet that fills a sector (erase + write), if measured. */
  sectorServiceMs?: number;
  /** Two one-way network delays (the smallest idle round trip less the service time). */
  twoWayMs: number;
  /** How far into the previous packet's service the next one is aimed. */
  aimMs: number;
  /** `aimMs` as a fraction of the service time. */
  phase: number;
  /** Retransmission margin beyond the predicted reply. */
  guardMs: number;
  /** Idle round trips measured; pipelining starts at `calibrationSamples`. */
  idleSamples: number;
  calibrationSamples: number;
  calibrated: boolean;
  /** Losses in the last 16 packets, and whether they stopped the pipeline. */
  recentLosses: number;
  stopAndWait: boolean;
  /** Packets in flight at most, and whether replies time the device closely enough for more than 3. */
  depth: number;
  steady: boolean;
}

/**
 * One decision of the engine, with the engine's time (`at`, ms): rendered for
 * `--verbose` by `transfer_trace.ts`, asserted in tests.
 */
export type TransferTrace =
  /** A datagram the engine asks for, and why now. */
  | {
    type: "send";
    at: number;
    seq: number;
    offset: number;
    len: number;
    kind: SendKind;
    why: string;
  }
  /** An end packet (len 0): the device flushes its buffer and reboots. */
  | { type: "end"; at: number; seq: number; reason: "final" | "cleanup"; why: string }
  /** A reply, what it meant, and the bytes confirmed after it. */
  | {
    type: "reply";
    at: number;
    seq: number;
    offset: number;
    len: number;
    /** The kind of transmission it answers, if it matches one exactly. */
    answers?: SendKind;
    /** From the end of its send call (never below 0). */
    rttMs?: number;
    /** How long that call took, when long enough for the datagram to leave well before its end. */
    sendMs?: number;
    meaning: string;
    confirmed: number;
  }
  /** A timer fired: what was waited for, and what follows. */
  | { type: "timeout"; at: number; what: string; then: string }
  /** The pacing model changed (calibrated, a new service time, a new aim). */
  | { type: "pacing"; at: number; why: string; pacing: PacingSnapshot }
  /** A step of the engine: a phase, the block size, a clean-up, the boot check, the verdict. */
  | { type: "step"; at: number; text: string };
