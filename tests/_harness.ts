/**
 * The whole system on a fake clock: the transfer engine, the link model and the device
 * model, in one deterministic event loop (no sockets, no real time). An 11 s outage
 * takes milliseconds to run.
 */
import { type DeviceEvent, DeviceModel, type DeviceOptions } from "../lib/sim/device.ts";
import { Link, type LinkOptions } from "../lib/sim/link.ts";
import { seededRandom } from "../lib/_random.ts";
import { parseReply } from "../lib/format/packet.ts";
import { EventClock } from "../lib/transfer/event_clock.ts";
import { AUTO_BLOCKS, liveSource, type PacketSource } from "../lib/transfer/packet_source.ts";
import type { SigningKey } from "../lib/format/keys.ts";
import { nativeSigner } from "../lib/format/signer.ts";
import { PROFILES } from "../lib/sim/device_profile.ts";
import {
  type TransferAction,
  TransferEngine,
  type TransferOptions,
} from "../lib/transfer/engine.ts";

export interface SentDatagram {
  at: number;
  kind: string;
  offset: number;
  len: number;
  end: boolean;
  /** The device's session when this datagram was sent (for the end-packet rule). */
  deviceExpected: number;
  deviceBuffered: number;
}

export interface HarnessResult {
  outcome: TransferAction | undefined;
  sent: SentDatagram[];
  deviceEvents: DeviceEvent[];
  statuses: { at: number; message: string }[];
  endAt: number;
}

export class Harness {
  readonly device: DeviceModel;
  readonly link: Link;
  engine: TransferEngine | undefined;
  readonly source: PacketSource;
  now = 0;
  #queue: { at: number; seq: number; run: () => void }[] = [];
  #order = 0;
  #engineTimer = 0;
  sent: SentDatagram[] = [];
  deviceEvents: DeviceEvent[] = [];
  statuses: { at: number; message: string }[] = [];
  outcome: TransferAction | undefined;
  /** Stop sending (an interrupted deploy: the process is gone). */
  stopped = false;
  /** Freeze the sender (Ctrl-Z, a sleeping laptop) when it sends a matching packet. */
  stall: { when: (offset: number, len: number) => boolean; ms: number } | undefined;
  /**
   * A send call that returns `ms` after its datagram left (the sender preempted inside
   * it): the driver reports the send at the call's end, and handles nothing meanwhile.
   */
  slowSend: { when: (offset: number, len: number) => boolean; ms: number } | undefined;
  #stalledUntil = -Infinity;
  /**
   * A reply read late (the sender stalled or inside a slow send) is handled at the time it
   * arrived, as the driver does with the system's receive times (`send_firmware.ts`).
   */
  stampReplies = false;
  #clock = new EventClock();
  /** Called after each batch of the engine's actions is carried out (as `arm` is in the driver). */
  afterActions: ((engine: TransferEngine, now: number) => void) | undefined;
  /** Each engine timer fires late by up to this many ms (a busy machine's timers). */
  timerJitterMs = 0;
  #jitter = seededRandom(7);

  constructor(device: Omit<DeviceOptions, "now">, link: LinkOptions, source: PacketSource) {
    this.device = new DeviceModel({ ...device, now: 0 });
    this.link = new Link(link);
    this.source = source;
  }

  #at(at: number, run: () => void): void {
    this.#queue.push({ at, seq: this.#order++, run });
    this.#queue.sort((a, b) => a.at - b.at || a.seq - b.seq);
  }

  #deviceStep(): void {
    const events = this.device.advance(this.now);
    for (const e of events) {
      this.deviceEvents.push(e);
      if (e.type === "reply") {
        for (const d of this.link.toClient(e.at, e.data)) {
          this.#at(d.at, () => this.#toEngine(d.data));
        }
      }
    }
    const wake = this.device.nextWakeup();
    if (wake !== undefined) this.#at(Math.max(wake, this.now), () => this.#deviceStep());
  }

  #toEngine(data: Uint8Array, arrivedAt = this.now): void {
    if (this.now < this.#stalledUntil) {
      this.#at(this.#stalledUntil, () => this.#toEngine(data, arrivedAt));
      return;
    }
    const reply = parseReply(data);
    if (!reply || !this.engine || this.stopped) return;
    const at = this.#clock.reply(this.now, this.stampReplies ? arrivedAt : undefined);
    this.#apply(this.engine.onReply(at, { ...reply, seq: this.source.senderSeq(reply.seq) }));
  }

  #apply(actions: TransferAction[]): void {
    const engine = this.engine!;
    for (const a of actions) {
      if (this.stopped) return;
      if (a.type === "send" || a.type === "end") {
        const data = a.type === "send"
          ? this.source.datagram(a.seq, a.offset, a.len)
          : this.source.endPacket(a.seq);
        const s = this.device.session;
        this.sent.push({
          at: this.now,
          kind: a.type === "send" ? a.kind : a.reason,
          offset: a.type === "send" ? a.offset : 0,
          len: a.type === "send" ? a.len : 0,
          end: a.type === "end",
          deviceExpected: s.expected,
          deviceBuffered: s.bufferedBytes,
        });
        if (a.type === "send" && this.stall?.when(a.offset, a.len)) {
          this.#stalledUntil = this.now + this.stall.ms;
          this.stall = undefined;
        }
        for (const d of this.link.toDevice(this.now, data)) {
          this.#at(d.at, () => {
            this.device.receive(this.now, d.data, "client");
            this.#deviceStep();
          });
        }
        if (a.type === "send" && this.slowSend?.when(a.offset, a.len)) {
          const { ms } = this.slowSend;
          this.#stalledUntil = Math.max(this.#stalledUntil, this.now + ms);
          engine.markSent(a.seq, this.now + ms, ms);
        }
      } else if (a.type === "status") {
        this.statuses.push({ at: this.now, message: a.message });
      } else {
        this.outcome = a;
      }
    }
    this.afterActions?.(engine, this.now);
    const timer = ++this.#engineTimer;
    const next = engine.nextTimer();
    if (next !== undefined && !this.outcome) {
      const fire = () => {
        if (this.now < this.#stalledUntil) return this.#at(this.#stalledUntil, fire);
        if (timer === this.#engineTimer && !this.stopped) {
          this.#apply(engine.onTimer(this.#clock.at(this.now)));
        }
      };
      const late = this.timerJitterMs > 0 ? this.#jitter() * this.timerJitterMs : 0;
      this.#at(Math.max(next, this.now) + late, fire);
    }
  }

  /**
   * The options a paced deploy of this source uses (15 s device timeout, the boot check
   * as asked), with `overrides`.
   */
  options(overrides: Partial<TransferOptions> = {}): TransferOptions {
    return {
      size: this.source.size,
      blocks: this.source.blocks,
      pace: true,
      timeoutMs: 15000,
      bootCheck: false,
      bootCheckMs: 4000,
      recoveryLen: this.source.recoveryLen,
      ...overrides,
    };
  }

  /** Starts a transfer now (a new deploy against the same device). */
  start(options: TransferOptions): void {
    this.outcome = undefined;
    this.stopped = false;
    this.engine = new TransferEngine(options);
    this.#deviceStep();
    this.#apply(this.engine.start(this.now));
  }

  /** Runs until the transfer ends (or `until`, or `stopWhen` says so). */
  run(until = 600_000, stopWhen?: () => boolean): HarnessResult {
    while (this.#queue.length > 0) {
      if (this.outcome || stopWhen?.()) break;
      const item = this.#queue.shift()!;
      if (item.at > until) {
        this.#queue.unshift(item);
        break;
      }
      this.now = Math.max(this.now, item.at);
      item.run();
    }
    return {
      outcome: this.outcome,
      sent: this.sent,
      deviceEvents: this.deviceEvents,
      statuses: this.statuses,
      endAt: this.now,
    };
  }

  /** Lets time pass with nobody sending (the device's timers still run). */
  idle(ms: number): void {
    this.stopped = true;
    this.#deviceStep();
    const until = this.now + ms;
    this.run(until);
    this.now = until;
    this.device.advance(this.now).forEach((e) => this.deviceEvents.push(e));
  }
}

/**
 * The quiet board (`esp8266-quiet`, a blank 1 MiB flash) behind a link of 5 ms each way
 * unless told otherwise, fed `image` signed on the fly with `key`.
 */
export function quietBoardHarness(
  image: Uint8Array,
  key: SigningKey,
  options: { mtu?: number; blocks?: number[]; link?: LinkOptions } = {},
): Harness {
  return new Harness(
    {
      modulus: key.modulus,
      flash: new Uint8Array(0x100000).fill(0xff),
      profile: PROFILES["esp8266-quiet"],
      mtu: options.mtu ?? 548,
    },
    options.link ?? { delayMs: 5 },
    liveSource(image, nativeSigner(key), options.blocks ?? AUTO_BLOCKS, false),
  );
}
