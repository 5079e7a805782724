/**
 * The clean-up phase: the way back to a clean device from an unknown session state
 * (docs/device.md, "Session restarts keep stale bytes"). Offset 0 was just confirmed in
 * the device's current session, so an end packet now flushes inside the app region and
 * reboots the device into OTA mode with an empty buffer. Then it checks that the end
 * packet was taken (the old session no longer takes its next offset) and waits for a
 * fresh session to answer offset 0.
 */
import type { EngineCore, Handover, PhaseHandler, Sent } from "./engine_core.ts";
import type { Reply } from "../format/packet.ts";

/** Session restarts cleaned up in one deploy before it gives up on the link. */
export const MAX_RECOVERIES = 5;
/** Clean-up end packets sent for one recovery before giving up on the device taking one. */
const MAX_CLEANUP_ENDS = 5;
/** Unanswered checks of the old session's next offset that show it took the end packet. */
const CHECK_TRIES = 3;

export class CleanupPhase implements PhaseHandler {
  readonly #c: EngineCore;
  readonly #handover: Handover;
  /** `check-left`: did the old session take the end packet? `await-fresh`: back in OTA mode? */
  #stage: "check-left" | "await-fresh" = "check-left";
  /** Every byte before it is confirmed in the old session (the end packet's proof). */
  #confirmed = 0;
  #ends = 0;
  #tries = 0;
  #at = 0;

  constructor(core: EngineCore, handover: Handover) {
    this.#c = core;
    this.#handover = handover;
  }

  /** Called while handling the fresh reply that confirmed a packet at offset 0. */
  start(confirmedAtZero: number, message: string): void {
    if (this.#c.recoveries >= MAX_RECOVERIES) {
      this.#c.fail({ kind: "unstable", recoveries: this.#c.recoveries });
      return;
    }
    this.#c.recoveries++;
    this.#c.status(message);
    this.#c.trace.step(() =>
      `recovery ${this.#c.recoveries} of at most ${MAX_RECOVERIES}: offset 0 is confirmed in the ` +
      "current session, so an end packet now flushes inside the app region and reboots the " +
      "device into a clean OTA session"
    );
    this.#c.phase = "cleanup";
    this.#c.plan.flights = [];
    this.#confirmed = confirmedAtZero;
    this.#ends = 0;
    this.#sendEnd();
  }

  #sendEnd(): void {
    this.#ends++;
    this.#c.sendEnd(
      "cleanup",
      () =>
        `every byte before ${this.#confirmed} is confirmed in this session: the flush ` +
        "lands in the app region",
    );
    this.#stage = "check-left";
    this.#tries = 0;
    this.#at = this.#c.now + this.#c.settleMs();
  }

  deadlines(): number[] {
    return [this.#at];
  }

  onTimer(): void {
    if (this.#c.now < this.#at) return;
    if (this.#stage === "check-left") {
      if (this.#tries >= CHECK_TRIES || this.#confirmed >= this.#c.options.size) {
        this.#stage = "await-fresh";
        this.#c.trace.step(() =>
          "the old session does not answer: the end packet was taken; waiting for the device " +
          "back in OTA mode"
        );
      } else {
        // The next offset of the old session: accepted only if the end packet was lost;
        // a fresh session drops it (it expects offset 0).
        this.#tries++;
        const at = this.#confirmed;
        this.#c.send(
          at,
          this.#c.recoveryLenAt(at),
          "cleanup-check",
          () =>
            `is the old session still open? Only if the end packet was lost is offset ${at} ` +
            "taken (a fresh session drops it)",
        );
        this.#at = this.#c.now + this.#c.settleMs();
        return;
      }
    }
    this.#c.send(
      0,
      this.#c.recoveryLenAt(0),
      "probe",
      () => "is the device back in OTA mode? A clean session answers offset 0",
    );
    this.#at = this.#c.now + Math.max(150, this.#c.settleMs());
  }

  onReply(reply: Reply, exact: Sent | undefined): void {
    if (!this.#c.fresh(exact)) return;
    if (this.#stage === "check-left" && reply.offset === this.#confirmed && reply.len > 0) {
      // Still in the old session: the end packet was lost. Everything before the next
      // offset is confirmed in this session again, so the end packet may go.
      this.#confirmed = reply.offset + reply.len;
      this.#c.trace.means(() =>
        "the old session is still open (the end packet was lost): end packet again"
      );
      if (this.#ends >= MAX_CLEANUP_ENDS) {
        this.#c.fail({ kind: "end-ignored" });
        return;
      }
      this.#sendEnd();
      return;
    }
    if (reply.offset === 0 && (this.#stage === "await-fresh" || this.#tries > 0)) {
      this.#c.trace.means(() => "offset 0 answered: a fresh session with an empty buffer");
      this.#c.status("device is back in OTA mode with a clean buffer");
      this.#handover.enterTransfer(reply.len);
    }
  }
}
