/**
 * The engine's last two phases. Ending: the final end packet, then repeats of the last
 * packet to learn whether the device took it (a device still in the session answers;
 * then the end packet was lost and goes again). Boot check: a device whose new image
 * failed boot8266's check comes back in OTA mode and answers offset 0 again; one that
 * booted it does not (docs/device.md, "Session restarts keep stale bytes").
 */
import type { EngineCore, Handover, PhaseHandler, Sent } from "./engine_core.ts";
import type { Reply } from "../format/packet.ts";

/** Final end packets sent for one transfer before giving up on the device taking one. */
const MAX_FINAL_ENDS = 3;
/** The status while the boot check watches (a terminal counts it down). */
export const BOOT_CHECK_STATUS = "checking that the device boots the new image";
/** Unanswered repeats of the last packet that show the device left the session. */
const LIVENESS_TRIES = 3;
/** Spacing of the boot check's probes; every fourth repeats the last packet instead. */
const BOOT_PROBE_MS = 250;

export class EndingPhase implements PhaseHandler {
  readonly #c: EngineCore;
  readonly #handover: Handover;
  #endsSent = 0;
  #livenessTries = 0;
  #livenessAt = 0;
  #bootProbeAt = 0;
  #bootProbes = 0;

  constructor(core: EngineCore, handover: Handover) {
    this.#c = core;
    this.#handover = handover;
  }

  /** Every byte is confirmed in the current session (by the reply being handled). */
  start(): void {
    this.#c.phase = "ending";
    this.#c.plan.flights = [];
    this.#endsSent = 0;
    this.#sendFinalEnd();
  }

  #sendFinalEnd(): void {
    this.#endsSent++;
    this.#c.sendEnd(
      "final",
      () =>
        `every byte (${this.#c.options.size}) confirmed in the device's current session` +
        (this.#endsSent > 1 ? `; try ${this.#endsSent}` : ""),
    );
    this.#livenessTries = 0;
    this.#livenessAt = this.#c.now + this.#c.settleMs();
  }

  deadlines(): number[] {
    return this.#c.phase === "ending"
      ? [this.#livenessAt]
      : [this.#bootProbeAt, this.#c.finalEndAt + this.#c.options.bootCheckMs];
  }

  onTimer(): void {
    if (this.#c.phase === "bootcheck") this.#bootTimer();
    else if (this.#c.now >= this.#livenessAt) this.#livenessTimer();
  }

  #sendLiveness(): void {
    const { offset, len } = this.#c.lastPacket();
    this.#c.send(
      offset,
      len,
      "liveness",
      () => "still in the session? Only if the end packet was lost is the last packet answered",
    );
  }

  #livenessTimer(): void {
    if (this.#livenessTries >= LIVENESS_TRIES) {
      // Three repeats of the last packet went unanswered: the device left the session.
      this.#c.trace.timeout(
        () => "three repeats of the last packet unanswered",
        () =>
          "the device took the end packet and left the session" +
          (this.#c.options.bootCheck
            ? `: boot check for ${this.#c.options.bootCheckMs / 1000} s after the end packet`
            : " (boot check off)"),
      );
      if (!this.#c.options.bootCheck) {
        this.#c.done("skipped");
        return;
      }
      this.#c.phase = "bootcheck";
      this.#c.status(BOOT_CHECK_STATUS);
      this.#bootProbes = 0;
      this.#bootProbeAt = this.#c.now;
      this.#bootTimer();
      return;
    }
    this.#livenessTries++;
    this.#sendLiveness();
    this.#livenessAt = this.#c.now + this.#c.settleMs();
  }

  #bootTimer(): void {
    if (this.#c.now >= this.#c.finalEndAt + this.#c.options.bootCheckMs) {
      this.#c.trace.step(() =>
        `boot check passed: nothing answered offset 0 for ${
          this.#c.options.bootCheckMs / 1000
        } s after the end packet (${this.#bootProbes} probes)`
      );
      this.#c.done("passed");
      return;
    }
    if (this.#c.now < this.#bootProbeAt) return;
    // Only a device whose new image failed boot8266's check answers offset 0 again.
    if (++this.#bootProbes % 4 === 0) this.#sendLiveness();
    else {
      this.#c.send(
        0,
        this.#c.packetLen(0),
        "boot-probe",
        () => "only a device whose new image failed boot8266's check answers offset 0 again",
      );
    }
    this.#bootProbeAt = this.#c.now + BOOT_PROBE_MS;
  }

  onReply(reply: Reply, exact: Sent | undefined): void {
    const last = this.#c.lastPacket();
    if (
      reply.offset === last.offset && reply.len === last.len && exact?.kind === "liveness" &&
      this.#c.fresh(exact)
    ) {
      // Still in the session with every byte confirmed: the end packet was lost.
      this.#c.trace.means(() =>
        "the last packet was answered: still in the session, the end packet was lost"
      );
      if (this.#endsSent >= MAX_FINAL_ENDS) {
        this.#c.fail({ kind: "end-ignored" });
        return;
      }
      this.#c.phase = "ending";
      this.#sendFinalEnd();
      return;
    }
    if (
      this.#c.phase === "bootcheck" && reply.offset === 0 && reply.len > 0 && this.#c.fresh(exact)
    ) {
      if (this.#c.attempts >= this.#c.options.maxAttempts) {
        this.#c.fail({ kind: "boot-failed", attempts: this.#c.attempts });
        return;
      }
      this.#c.trace.means(() =>
        "offset 0 answered after the end packet: boot8266 rejected the image"
      );
      this.#c.attempts++;
      this.#c.status(
        "the device did not boot the new image (it is back in OTA mode): sending it once more",
      );
      this.#handover.enterTransfer(reply.len);
    }
  }
}
