/**
 * A faithful model of a yaota8266 device (docs/device.md, "Wire protocol", "Re-entrancy",
 * "Session restarts keep stale bytes", "Entering OTA mode"). A pure state machine:
 * datagrams and the time go in (`receive`, `advance`), events come out (replies to send,
 * flash writes, reboots). The virtual device (`sim`) wires it to a socket; tests drive it
 * with a fake clock.
 */
import { checkMs, type DeviceProfile, PROFILES } from "./device_profile.ts";
import { type PublicKeyOp, publicKeyOp, verifyDatagram } from "./device_verify.ts";
import { makeReply, MIN_DATAGRAM, parseRequestHeader, SECTOR_SIZE } from "../format/packet.ts";
import { bootCheck, DEFAULT_APP_OFFSET } from "../format/image.ts";

export type DeviceMode = "ota" | "app" | "rebooting";

/** Why a datagram was not accepted, in the ota-server's order (docs/device.md, "Wire protocol"). */
export type PacketOutcome =
  | "accepted"
  | "duplicate"
  | "end"
  | "short"
  | "bad-signature"
  | "unexpected-offset"
  | "overflow"
  | "lost-in-nested-check"
  | "queue-full"
  /** The device was rebooting: no network yet, the datagram vanishes (no reply, no refusal). */
  | "rebooting"
  /** The app runs: the OTA server is not listening. */
  | "not-listening";

export type DeviceEvent =
  | { type: "reply"; at: number; data: Uint8Array; to?: unknown }
  | {
    type: "packet";
    at: number;
    seq: number;
    offset: number;
    len: number;
    outcome: PacketOutcome;
    nested?: boolean;
    /** When the datagram reached the device and when its handling began (not nested). */
    arrived?: number;
    started?: number;
  }
  | { type: "flash-write"; at: number; address: number; belowApp: boolean }
  | { type: "session-restart"; at: number; staleBytes: number }
  | { type: "reboot"; at: number; reason: "end-packet" | "idle" | "reset" }
  | {
    type: "boot";
    at: number;
    mode: "ota" | "app";
    boot: "ok" | "fail" | "ota-requested";
    bootloaderOverwritten: boolean;
  };

export interface DeviceOptions {
  modulus: Uint8Array;
  /** The whole flash; written in place. */
  flash: Uint8Array;
  appOffset?: number;
  profile?: DeviceProfile;
  /** Receive-queue places; a datagram arriving when it is full is dropped. */
  rxq?: number;
  /** Largest datagram read whole; a larger one arrives fragmented and never verifies. */
  mtu?: number;
  pktWaitMs?: number;
  idleRebootMs?: number;
  /** Mode at power-on: "ota" as if the button was pressed, "boot" to run boot8266's check. */
  start?: "ota" | "boot";
  /**
   * Whether boot8266 honours the RTC magic (default true). False is upstream yaota8266:
   * the magic is ignored (and left in RTC memory), so `ota.start()` reboots into the app.
   */
  rtcTrigger?: boolean;
  /**
   * A failing flash chip, for tests of what a fleet does with a bad board: `corrupt`
   * flips a bit in every sector written (the new image then fails boot8266's MD5 check
   * and the board comes back in OTA mode), `drop` loses every write (the old image
   * stays and boots).
   */
  flashFault?: "corrupt" | "drop";
  now?: number;
}

/**
 * `ota_prev_offset` after `session_init`: −1 in a `uint32_t` (docs/device.md, "Asking
 * whether a device is in OTA mode"), so a packet at offset 0xFFFFFFFF is a duplicate.
 */
const NO_OFFSET = 0xffffffff;
const RTC_MAGIC = "yaotaota";

interface Queued {
  at: number;
  data: Uint8Array;
  /** Who sent it: the reply goes back there. */
  from?: unknown;
}

/** Handled inside another packet's check, or on its own: when it arrived and began. */
type HandledAs = "nested" | { arrived: number; started: number };

interface Job {
  data: Uint8Array;
  from?: unknown;
  arrived: number;
  start: number;
  /** The last moment a waiting datagram is pulled into the signature check. */
  checkpoint: number;
  /** Set once the checkpoint has been handled. */
  end?: number;
}

export class DeviceModel {
  readonly flash: Uint8Array;
  readonly appOffset: number;
  readonly profile: DeviceProfile;
  readonly rxq: number;
  readonly mtu: number;
  readonly pktWaitMs: number;
  readonly idleRebootMs: number;
  readonly rtcTrigger: boolean;
  readonly flashFault: "corrupt" | "drop" | undefined;
  /** RTC user memory: survives resets; "yaotaota" sends boot8266 into OTA mode. */
  rtcMemory: Uint8Array = new Uint8Array(0);
  mode: DeviceMode = "ota";
  bootloaderOverwritten = false;

  #key: PublicKeyOp;
  #buffer = new Uint8Array(SECTOR_SIZE).fill(0xff);
  #bufferLength = 0;
  #expected = 0;
  #prevOffset = NO_OFFSET;
  #lastConfirmAt = 0;
  #sessionStarted = false;
  #otaEnteredAt = 0;
  #firstPacketSeen = false;
  #rebootUntil = 0;
  #queue: Queued[] = [];
  #job: Job | undefined;
  #busyUntil = 0;
  #events: DeviceEvent[] = [];

  constructor(options: DeviceOptions) {
    this.flash = options.flash;
    this.appOffset = options.appOffset ?? DEFAULT_APP_OFFSET;
    this.profile = options.profile ?? PROFILES.instant!;
    this.rxq = options.rxq ?? 4;
    this.mtu = options.mtu ?? 1472;
    this.pktWaitMs = options.pktWaitMs ?? 10000;
    this.idleRebootMs = options.idleRebootMs ?? 60000;
    this.rtcTrigger = options.rtcTrigger ?? true;
    this.flashFault = options.flashFault;
    this.#key = publicKeyOp(options.modulus);
    const now = options.now ?? 0;
    if (options.start === "boot") this.#boot(now);
    else this.#enterOtaMode(now);
  }

  /** The next offset the device expects, and the stale bytes in its buffer (for tests). */
  get session(): { expected: number; bufferedBytes: number } {
    return { expected: this.#expected, bufferedBytes: this.#bufferLength };
  }

  /** While `mode` is "rebooting": when the device boots again. */
  get rebootingUntil(): number | undefined {
    return this.mode === "rebooting" ? this.#rebootUntil : undefined;
  }

  /** Does boot8266 accept the app in flash? */
  appIsValid(): boolean {
    return bootCheck(this.flash.subarray(this.appOffset));
  }

  /** A datagram from `from` reaches the device at `now`. */
  receive(now: number, data: Uint8Array, from?: unknown): void {
    this.#run(now);
    if (this.mode !== "ota") {
      this.#packetEvent(now, data, this.mode === "rebooting" ? "rebooting" : "not-listening");
      return;
    }
    if (this.#queue.length >= this.rxq) {
      this.#packetEvent(now, data, "queue-full");
      return;
    }
    if (data.length < MIN_DATAGRAM) {
      // Rule 1: dropped before any signature check, so it never takes a waiting packet
      // into one (docs/device.md, "Re-entrancy"): as good as handled on arrival.
      this.#packetEvent(now, data, "short");
      return;
    }
    this.#queue.push({ at: now, data, from });
    this.#run(now);
  }

  /** `machine.reset()` from the running app: reboot, into OTA mode if RTC memory says so. */
  reset(now: number): void {
    this.#run(now);
    this.#reboot(now, "reset");
  }

  /** Runs everything due up to `now` and returns the events since the last call. */
  advance(now: number): DeviceEvent[] {
    this.#run(now);
    const events = this.#events;
    this.#events = [];
    return events;
  }

  #run(now: number): void {
    for (;;) {
      const due = this.#nextDue();
      if (due === undefined || due > now) break;
      this.#step(due);
    }
  }

  /** When `advance` next has something to do, if anything. */
  nextWakeup(): number | undefined {
    return this.#nextDue();
  }

  #nextDue(): number | undefined {
    if (this.mode === "rebooting") return this.#rebootUntil;
    if (this.mode !== "ota") return undefined;
    const times: number[] = [];
    if (this.#job) times.push(this.#job.end ?? this.#job.checkpoint);
    else if (this.#queue.length > 0) times.push(Math.max(this.#queue[0]!.at, this.#busyUntil));
    if (this.#sessionStarted) times.push(this.#lastConfirmAt + this.pktWaitMs);
    if (!this.#firstPacketSeen) times.push(this.#otaEnteredAt + this.idleRebootMs);
    return times.length ? Math.min(...times) : undefined;
  }

  #step(now: number): void {
    if (this.mode === "rebooting") {
      if (now >= this.#rebootUntil) this.#boot(now);
      return;
    }
    if (this.#sessionStarted && now >= this.#lastConfirmAt + this.pktWaitMs) {
      // PKT_WAIT_MS: the session restarts but the buffer is NOT cleared (docs/device.md,
      // "Session restarts keep stale bytes").
      this.#sessionStarted = false;
      this.#expected = 0;
      this.#prevOffset = NO_OFFSET;
      this.#events.push({ type: "session-restart", at: now, staleBytes: this.#bufferLength });
      return;
    }
    if (!this.#firstPacketSeen && now >= this.#otaEnteredAt + this.idleRebootMs) {
      this.#reboot(now, "idle");
      return;
    }
    const job = this.#job;
    if (!job) {
      const next = this.#queue.shift();
      if (!next) return;
      this.#startJob(Math.max(now, next.at, this.#busyUntil), next);
      return;
    }
    if (job.end === undefined) {
      this.#checkpoint(job);
      return;
    }
    this.#job = undefined;
    this.#busyUntil = job.end;
  }

  #startJob(start: number, { at: arrived, data, from }: Queued): void {
    const pre = this.profile.logMs * this.profile.logBeforeCheck;
    const check = checkMs(this.profile, this.#key.length);
    // axTLS calls ets_loop_iter() at the start of each of the two exponent-bit steps
    // for e=3 (docs/device.md, "Re-entrancy"): the last chance for a waiting datagram.
    this.#job = { data, from, arrived, start, checkpoint: start + pre + check / 2 };
  }

  #checkpoint(job: Job): void {
    let t = job.checkpoint;
    const nested: Queued[] = [];
    while (this.#queue.length > 0 && this.#queue[0]!.at <= t) nested.push(this.#queue.shift()!);
    const rest = this.profile.logMs * (1 - this.profile.logBeforeCheck) +
      checkMs(this.profile, this.#key.length) / 2;
    if (nested.length === 0) {
      const sector = this.#handle(
        t,
        job.data,
        { arrived: job.arrived, started: job.start },
        job.from,
      );
      job.end = t + rest + (sector ? this.profile.sectorWriteMs : 0);
      this.#replyIfAny(job.end);
      return;
    }
    // Datagrams already waiting are handled inside this check, with the old state; the
    // interrupted check then resumes on freed memory: count the outer packet as lost.
    for (const q of nested) {
      const sector = this.#handle(t, q.data, "nested", q.from);
      t += this.profile.logMs + checkMs(this.profile, this.#key.length) +
        (sector ? this.profile.sectorWriteMs : 0);
      this.#replyIfAny(t);
      if (this.mode !== "ota") return;
    }
    this.#packetEvent(job.checkpoint, job.data, "lost-in-nested-check");
    job.end = t + rest;
  }

  #pendingReply: { data: Uint8Array; to?: unknown } | undefined;

  #replyIfAny(at: number): void {
    if (this.#pendingReply) {
      this.#events.push({ type: "reply", at, ...this.#pendingReply });
      this.#pendingReply = undefined;
    }
  }

  /** The per-datagram rules of `ota_udp_incoming`, in order. Returns true if a sector was written. */
  #handle(now: number, data: Uint8Array, as: HandledAs, from?: unknown): boolean {
    const header = parseRequestHeader(data);
    if (!header) {
      this.#packetEvent(now, data, "short", as);
      return false;
    }
    // Only the first pbuf is read: a datagram that arrived fragmented never verifies.
    if (data.length > this.mtu || !verifyDatagram(data, this.#key)) {
      this.#packetEvent(now, data, "bad-signature", as);
      return false;
    }
    // The OTA-mode question (offset 0xFFFFFFFF in a fresh session) changes nothing: the
    // idle reboot still counts from the session's start.
    const question = header.len > 0 && header.offset === NO_OFFSET &&
      this.#prevOffset === NO_OFFSET;
    if (!question) this.#firstPacketSeen = true;
    // Rule 2: any valid packet with len 0 ends the transfer, whatever its offset.
    if (header.len === 0) {
      this.#packetEvent(now, data, "end", as);
      if (this.#bufferLength > 0) this.#flush(now);
      this.#reboot(now, "end-packet");
      return false;
    }
    if (header.offset === this.#prevOffset) {
      this.#packetEvent(now, data, "duplicate", as);
      this.#confirm(now, data, from);
      return false;
    }
    if (header.offset !== this.#expected) {
      this.#packetEvent(now, data, "unexpected-offset", as);
      return false;
    }
    if (this.#bufferLength + header.len > SECTOR_SIZE) {
      this.#packetEvent(now, data, "overflow", as);
      return false;
    }
    this.#buffer.set(data.subarray(12, 12 + header.len), this.#bufferLength);
    this.#bufferLength += header.len;
    this.#prevOffset = header.offset;
    this.#expected += header.len;
    this.#sessionStarted = true;
    this.#packetEvent(now, data, "accepted", as);
    let sector = false;
    if (this.#bufferLength === SECTOR_SIZE) {
      this.#flush(now);
      sector = true;
    }
    this.#confirm(now, data, from);
    return sector;
  }

  #confirm(now: number, request: Uint8Array, to?: unknown): void {
    this.#lastConfirmAt = now;
    this.#pendingReply = { data: makeReply(request), to };
  }

  /** Flush address (docs/device.md, "Wire protocol"): round down, or one sector back if aligned. */
  #flush(now: number): void {
    let address = this.appOffset + this.#expected;
    if (address % SECTOR_SIZE !== 0) address -= address % SECTOR_SIZE;
    else address -= SECTOR_SIZE;
    const belowApp = address < this.appOffset;
    if (belowApp) this.bootloaderOverwritten = true;
    if (address >= 0 && address + SECTOR_SIZE <= this.flash.length) {
      const middle = SECTOR_SIZE >> 1;
      if (this.flashFault === "corrupt") this.#buffer[middle] = this.#buffer[middle]! ^ 0x01;
      if (this.flashFault !== "drop") this.flash.set(this.#buffer, address);
    }
    this.#events.push({ type: "flash-write", at: now, address, belowApp });
    this.#buffer.fill(0xff);
    this.#bufferLength = 0;
  }

  #reboot(now: number, reason: "end-packet" | "idle" | "reset"): void {
    this.mode = "rebooting";
    this.#rebootUntil = now + this.profile.rebootMs;
    this.#queue = [];
    this.#job = undefined;
    this.#pendingReply = undefined;
    this.#events.push({ type: "reboot", at: now, reason });
  }

  /** boot8266: OTA mode on the RTC magic or an invalid app, else run the app. */
  #boot(now: number): void {
    const magic = this.rtcTrigger &&
      new TextDecoder().decode(this.rtcMemory.subarray(0, 8)) === RTC_MAGIC;
    if (magic) this.rtcMemory = new Uint8Array(0);
    const valid = this.appIsValid();
    const mode = magic || !valid ? "ota" : "app";
    if (mode === "ota") this.#enterOtaMode(now);
    else this.mode = "app";
    this.#events.push({
      type: "boot",
      at: now,
      mode,
      boot: magic ? "ota-requested" : valid ? "ok" : "fail",
      bootloaderOverwritten: this.bootloaderOverwritten,
    });
  }

  /** Entering OTA mode initialises the buffer (`buf_init`) and the session. */
  #enterOtaMode(now: number): void {
    this.mode = "ota";
    this.#buffer.fill(0xff);
    this.#bufferLength = 0;
    this.#expected = 0;
    this.#prevOffset = NO_OFFSET;
    this.#sessionStarted = false;
    this.#otaEnteredAt = now;
    this.#firstPacketSeen = false;
    this.#busyUntil = now;
  }

  #packetEvent(at: number, data: Uint8Array, outcome: PacketOutcome, as?: HandledAs): void {
    const h = parseRequestHeader(data);
    this.#events.push({
      type: "packet",
      at,
      seq: h?.seq ?? 0,
      offset: h?.offset ?? 0,
      len: h?.len ?? 0,
      outcome,
      ...(as === "nested" ? { nested: true } : as ?? {}),
    });
  }
}
