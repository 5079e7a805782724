/**
 * The probe phase: find the largest block size the link passes, at offset `#at` (0 at the
 * start; further on after a recovery that began before the size was settled). The sizes
 * are tried largest first, spaced far beyond a signature check; an answered probe
 * confirms its bytes. When a larger size went unanswered, it may have been taken with its
 * reply lost: the resolve step asks which offset the device expects next. A device that
 * answers only after a silence may hold an earlier session's stale bytes: clean-up first.
 */
import type { EngineCore, Handover, PhaseHandler, Sent } from "./engine_core.ts";
import { formatMs as ms } from "./transfer_trace.ts";
import { type Reply, SECTOR_SIZE } from "../format/packet.ts";

/** Spacing of the first probes of each size: far beyond a signature check. */
const PROBE_STAGGER_MS = 30;
/**
 * Staggered rounds before each size waits out a timeout of its own. The second one is for
 * an answer lost on its way: the smallest size's reply, lost, would otherwise cost a
 * timeout per size and try (1.2 s) before the device's repeated answer.
 */
const STAGGERED_ROUNDS = 2;
/**
 * The longest wait for a probe's answer while a device that was just told to reboot into
 * OTA mode has never answered: it answers the first probe after it booted, so the probes
 * go this often (an answer that comes later still counts).
 */
const REBOOTING_WAIT_MS = 100;

export class ProbePhase implements PhaseHandler {
  readonly #c: EngineCore;
  readonly #handover: Handover;
  /** Where the probes go. */
  #at = 0;
  /** The sizes still in question, largest first. */
  #candidates: number[];
  #candidate = 0;
  #tries = 0;
  /** Sizes probed here and not (yet) answered. */
  #timedOut = new Set<number>();
  /** Every size was tried at offset 0 without an answer. */
  #cycleDone = false;
  /** First rounds: the sizes are tried one after another without waiting a full timeout. */
  #staggering = true;
  #staggeredRounds = 0;
  /** The sizes the device may have taken with the reply lost (resolve step). */
  #resolveOptions: number[] = [];
  /** Probes timed out before the device ever answered (after a trigger: it was rebooting). */
  #probedBlind = false;
  #deadline = 0;
  /** The last probe or resolving packet, and how long its answer may take from leaving. */
  #lastSent: { seq: number; waitMs: number } | undefined;

  constructor(core: EngineCore, handover: Handover) {
    this.#c = core;
    this.#handover = handover;
    this.#candidates = [...core.options.blocks];
  }

  /** The first probe, at offset 0. */
  start(): void {
    this.#send();
  }

  /** Probes every size again at `offset`, where a transfer got to without a settled size. */
  restartAt(offset: number): void {
    this.#c.phase = "probe";
    this.#at = offset;
    this.#candidates = [...this.#c.options.blocks];
    this.#candidate = 0;
    this.#tries = 0;
    this.#staggering = true;
    this.#staggeredRounds = 0;
    this.#timedOut.clear();
    this.#c.trace.step(() => `probing the block size again at offset ${offset}`);
    this.#send();
  }

  deadlines(): number[] {
    return [this.#deadline];
  }

  /**
   * The last packet really left at `at` (signed late, or a stalled sender): its answer is
   * awaited from then. A slow start is not a lost datagram.
   */
  sentLate(seq: number, at: number): void {
    if (this.#lastSent?.seq === seq) {
      this.#deadline = Math.max(this.#deadline, at + this.#lastSent.waitMs);
    }
  }

  onTimer(): void {
    if (this.#c.now >= this.#deadline) this.#timeout();
  }

  onReply(reply: Reply, exact: Sent | undefined): void {
    if (this.#c.phase === "resolve") this.#resolveReply(reply, exact);
    else this.#probeReply(reply, exact);
  }

  #send(): void {
    const size = this.#candidates[this.#candidate]!;
    const len = Math.min(size, this.#c.options.size - this.#at);
    const staggered = this.#staggering && this.#candidate < this.#candidates.length - 1;
    const wait = staggered ? PROBE_STAGGER_MS : this.#rto();
    const seq = this.#c.send(
      this.#at,
      len,
      "probe",
      () =>
        this.#candidates.length > 1
          ? `does a ${size}-byte block pass the link? ` +
            (staggered
              ? `the next size follows in ${wait} ms, long after this one's signature check`
              : `answer expected within ${wait} ms`)
          : `the device's first answer, at offset ${this.#at} (within ${wait} ms)`,
    );
    // A probe that is not answered is presumed too large (or lost) until an answer says
    // otherwise: if it was accepted with its reply lost, `resolve` finds out.
    this.#timedOut.add(size);
    this.#deadline = this.#c.now + wait;
    this.#lastSent = { seq, waitMs: wait };
  }

  #rto(): number {
    const { pacing, options } = this.#c;
    if (options.freshSession && !this.#c.everAnswered) {
      return Math.min(options.initialRtoMs, REBOOTING_WAIT_MS);
    }
    return pacing.measured
      ? Math.min(options.initialRtoMs, 2 * pacing.serviceMs(false) + 30)
      : options.initialRtoMs;
  }

  #timeout(): void {
    const resolving = this.#c.phase === "resolve";
    this.#c.trace.timeout(
      () => `no answer to the ${resolving ? "resolving packet" : "probe"}`,
      () =>
        resolving
          ? "trying the next candidate offset"
          : this.#staggering && this.#candidate < this.#candidates.length - 1
          ? "next block size"
          : this.#staggering
          ? "every size again, one after another"
          : "probing again",
    );
    if (!this.#c.everAnswered) this.#probedBlind = true;
    if (resolving) {
      this.#candidate = (this.#candidate + 1) % this.#resolveOptions.length;
      this.#sendResolve();
      return;
    }
    if (this.#staggering) {
      // Next size down, well after the previous one's signature check (no nesting).
      if (++this.#candidate < this.#candidates.length) {
        this.#send();
        return;
      }
      this.#candidate = 0;
      if (++this.#staggeredRounds >= STAGGERED_ROUNDS) {
        this.#staggering = false;
        this.#tries = 1;
      }
      this.#send();
      return;
    }
    if (++this.#tries >= this.#c.options.probeTries) {
      this.#tries = 0;
      if (++this.#candidate >= this.#candidates.length) {
        this.#candidate = 0;
        if (!this.#cycleDone && this.#at === 0 && !this.#c.everAnswered) {
          this.#c.status(
            this.#c.options.freshSession
              ? "no answer yet: the device is still rebooting into OTA mode; waiting"
              : "no answer yet: the device may still be in an earlier session (an interrupted deploy?) " +
                "and restarts it after 10 s without packets; waiting",
          );
        }
        this.#cycleDone = true;
      }
    }
    this.#send();
  }

  #probeReply(reply: Reply, exact: Sent | undefined): void {
    const { options } = this.#c;
    if (
      reply.offset !== this.#at ||
      !this.#candidates.includes(reply.len) && reply.offset + reply.len !== options.size
    ) {
      this.#c.trace.means(() => `ignored: not an answer to a probe at offset ${this.#at}`);
      return;
    }
    if (!this.#c.fresh(exact)) return;
    const rtt = this.#c.idleRoundTrip(exact!, false);
    this.#c.trace.means(() =>
      `the ${reply.len}-byte probe was taken: an idle round trip of ${ms(rtt)}`
    );
    if (
      this.#at === 0 && this.#cycleDone && this.#c.recoveries === 0 && !this.#freshSessionAnswer()
    ) {
      // The device answered only after a silence: it may hold stale bytes from an earlier
      // session. Offset 0 is confirmed in the current session, so an end packet now
      // flushes inside the app region and reboots it into a clean OTA session.
      this.#handover.startCleanup(
        reply.len,
        "the device had an earlier session open — cleaning up, then sending from the start",
      );
      return;
    }
    this.#timedOut.delete(reply.len);
    // Another size sent here went unanswered: it may have been accepted with its reply
    // lost, and then this reply is the device repeating it (same offset, rule 3, with
    // this request's length). Find out which offset it expects next.
    const fits = (s: number) => this.#at + s < options.size;
    const others = [...this.#timedOut].filter((s) => s !== reply.len && fits(s));
    if (others.length === 0 || !fits(reply.len)) {
      this.#chooseBlock(reply.len, this.#at + reply.len);
      return;
    }
    this.#c.trace.means(() =>
      `the ${reply.len}-byte probe was taken, but ${
        others.join(" and ")
      }-byte probes went unanswered: one may have been taken with its reply lost`
    );
    this.#c.phase = "resolve";
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
  #freshSessionAnswer(): boolean {
    return this.#c.options.freshSession &&
      this.#c.now - this.#c.startedAt < this.#c.options.sessionWaitMs;
  }

  #sendResolve(): void {
    const size = this.#resolveOptions[this.#candidate]!;
    const offset = this.#at + size;
    const seq = this.#c.send(
      offset,
      Math.min(size, this.#c.options.size - offset),
      "resolve",
      () =>
        `does the device expect offset ${offset}? (it does if it took the ${size}-byte packet ` +
        "at the probe's offset)",
    );
    this.#deadline = this.#c.now + this.#rto();
    this.#lastSent = { seq, waitMs: this.#rto() };
  }

  #resolveReply(reply: Reply, exact: Sent | undefined): void {
    const size = reply.offset - this.#at;
    if (
      !this.#resolveOptions.includes(size) || exact?.kind !== "resolve" || !this.#c.fresh(exact)
    ) {
      return;
    }
    // Sent with nothing else on the device (the probes before it are long done): an idle
    // round trip, one fewer stop-and-wait packet before pipelining.
    const rtt = this.#c.idleRoundTrip(exact, (reply.offset + reply.len) % SECTOR_SIZE === 0);
    this.#c.trace.means(() =>
      `the device had taken the ${size}-byte packet: it expected offset ${reply.offset}; ` +
      `an idle round trip of ${ms(rtt)}`
    );
    this.#chooseBlock(size, reply.offset + reply.len);
  }

  #chooseBlock(block: number, confirmed: number): void {
    const { options } = this.#c;
    if (options.freshSession && this.#probedBlind && block < options.blocks[0]!) {
      // The larger sizes went unanswered while the device was still rebooting into OTA mode,
      // which says nothing about the link: probe them again further on (`restartAt`).
      this.#probedBlind = false;
      this.#c.trace.step(() =>
        `block size not settled: the larger sizes went unanswered while the device was ` +
        "still rebooting into OTA mode; probing them again further on"
      );
      this.#handover.enterTransfer(confirmed);
      return;
    }
    // A larger probe answered late (after a smaller one, or during the resolve step)
    // passed the link all the same.
    this.#c.block = Math.max(block, this.#c.provenBlock);
    this.#c.blockKnown = true;
    this.#candidates = [block];
    if (options.blocks.length > 1) this.#c.status(`block size ${this.#c.block} bytes`);
    else this.#c.trace.step(() => `block size ${block} bytes (fixed)`);
    this.#handover.enterTransfer(confirmed);
  }
}
