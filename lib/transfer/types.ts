/** The transfer engine's options, actions and results (see `engine.ts`). */
import type { SendKind, TransferTrace } from "./trace_record.ts";

export interface TransferOptions {
  /** Bytes of firmware. */
  size: number;
  /** Candidate block sizes, largest first; one entry for a fixed size. */
  blocks: number[];
  /** Pace packets to hide the round trip; false = stop-and-wait. */
  pace: boolean;
  /** Fail when the device answers nothing for this long. */
  timeoutMs: number;
  /**
   * Time allowed for the very first answer when that is longer than `timeoutMs`: after a
   * trigger the device is still rebooting into OTA mode, and it gives up waiting for a
   * first packet after its IDLE_REBOOT_MS (60 s) anyway. 0 (default): `timeoutMs`.
   */
  firstAnswerMs?: number;
  /**
   * The device has just entered OTA mode (after a trigger), so its buffer is clean
   * (`buf_init`): a silence before its first answer is the reboot, not an earlier session.
   * It needs no clean-up — as long as the answer comes within `sessionWaitMs` of the
   * start, before any session of ours could have timed out and left stale bytes — and
   * says nothing about the link: block sizes that went unanswered then are probed again.
   */
  freshSession?: boolean;
  /**
   * Give up after this long in all (ms), whatever the device answers. 0 (default): the
   * image at the slowest believable rate plus slack, per attempt (`overallLimitMs`).
   */
  overallMs?: number;
  /** Watch for the device falling back to OTA mode after the end packet. */
  bootCheck: boolean;
  bootCheckMs?: number;
  /** The device's PKT_WAIT_MS session timer. */
  sessionWaitMs?: number;
  /** Transfers of the whole image, at most (a boot check failure sends it once more). */
  maxAttempts?: number;
  /** Length of the offset-0 packet used to find out the device's state: 256 always fits beside stale bytes. */
  recoveryLen?: number;
  /** Retransmission timeout before anything is measured. */
  initialRtoMs?: number;
  /** Tries per block size when probing. */
  probeTries?: number;
  /**
   * Receives every decision as a record (`--verbose`): what was sent and why, what each
   * reply meant, timeouts, pacing, recovery and boot-check steps. The engine only calls it.
   */
  trace?: (record: TransferTrace) => void;
}

export type TransferAction =
  | { type: "send"; seq: number; offset: number; len: number; kind: SendKind }
  | { type: "end"; seq: number; reason: "final" | "cleanup" }
  | { type: "status"; message: string }
  | { type: "done"; result: TransferSummary }
  | { type: "failed"; failure: TransferFailure };

export interface TransferSummary {
  bytes: number;
  block: number;
  packets: number;
  retransmits: number;
  paced: boolean;
  bootCheck: "passed" | "failed" | "skipped";
  attempts: number;
  recoveries: number;
  /** When the last end packet was sent (ms since start): the transfer time. */
  transferMs: number;
}

export type TransferFailure =
  /** `unmatched`: replies that answered nothing sent (another offset or length). */
  | { kind: "no-answer"; unmatched: number }
  | { kind: "stopped-answering"; confirmed: number; silentMs: number; unmatched: number }
  /** The host refused the port (ICMP port unreachable): it runs its app. */
  | { kind: "not-in-ota-mode" }
  | { kind: "overall-limit"; confirmed: number; limitMs: number; unmatched: number }
  | { kind: "boot-failed"; attempts: number }
  | { kind: "end-ignored" }
  | { kind: "unstable"; recoveries: number };
