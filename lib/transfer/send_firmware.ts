/**
 * Runs the transfer engine over UDP: sends what it asks for, feeds it replies and timer
 * ticks, reports progress. The only place where the engine meets a socket and a clock.
 */
import {
  type TransferAction,
  TransferEngine,
  type TransferFailure,
  type TransferSummary,
  type TransferTrace,
} from "./engine.ts";
import type { TransferOptions } from "./types.ts";
import { pick } from "../_pick.ts";
import { describeTransferTrace } from "./transfer_trace.ts";
import { trace, tracing } from "../trace.ts";
import { EventClock } from "./event_clock.ts";
import { openUdpPeer } from "./udp.ts";
import { parseReply, parseRequestHeader } from "../format/packet.ts";
import type { PacketSource } from "./packet_source.ts";
import { InterruptedError } from "../errors.ts";
import { sendError } from "./send_error.ts";
import { udpPortRefused } from "./port_refused.ts";
import { preciseAlarm } from "./precise_timer.ts";
import { SignSchedule } from "./sign_schedule.ts";

/** How long a refusal of the first packets is listened for (an ICMP comes back in a round trip). */
const REFUSAL_WAIT_MS = 2000;
/** How often the app is asked whether it runs, once the end packet is out. */
const APP_POLL_MS = 100;

export interface SendProgress {
  confirmed: number;
  size: number;
  retransmits: number;
  block: number;
  elapsedMs: number;
  phase: string;
  attempts: number;
}

/** One datagram that left the socket (for tests and logs). */
export interface SentRecord {
  at: number;
  kind: string;
  seq: number;
  offset: number;
  len: number;
  end: boolean;
}

/** The engine's options that `sendFirmware` passes on as they are (see `TransferOptions`). */
export const ENGINE_OPTIONS = [
  "pace",
  "timeoutMs",
  "firstAnswerMs",
  "freshSession",
  "bootCheck",
  "bootCheckMs",
] as const satisfies readonly (keyof TransferOptions)[];

export interface SendOptions extends Pick<TransferOptions, typeof ENGINE_OPTIONS[number]> {
  /** The device's address (an IPv4 address or a host name). */
  host: string;
  port: number;
  source: PacketSource;
  /** Fixed block size, or all of the source's sizes to probe. */
  blocks?: number[];
  signal?: AbortSignal;
  onProgress?: (p: SendProgress) => void;
  onStatus?: (message: string) => void;
  onSent?: (record: SentRecord) => void;
  /**
   * Listen for the host refusing the port (ICMP port unreachable: a board running its
   * app) and fail at once with `not-in-ota-mode`. Default: unless `freshSession` (after a
   * trigger the board is rebooting into OTA mode, and its app may still refuse).
   */
  refusalCheck?: boolean;
  /** Asked during the boot check: does the app answer (e.g. its WebREPL port)? */
  appRunning?: () => Promise<boolean>;
  /**
   * The engine's decisions as records. Default: with `--verbose`, rendered as lines under
   * `traceTopic` (default "deploy").
   */
  trace?: TransferOptions["trace"];
  traceTopic?: string;
}

export type SendOutcome =
  | { ok: true; summary: TransferSummary; seconds: number }
  | {
    ok: false;
    failure: TransferFailure;
    seconds: number;
    confirmed: number;
    retransmits: number;
    block: number;
    packets: number;
  };

export async function sendFirmware(options: SendOptions): Promise<SendOutcome> {
  const { source } = options;
  const topic = options.traceTopic ?? "deploy";
  const engineTrace = options.trace ??
    (tracing() ? (r: TransferTrace) => trace(topic, describeTransferTrace(r)) : undefined);
  const engine = new TransferEngine({
    ...pick(options, ENGINE_OPTIONS),
    size: source.size,
    blocks: options.blocks ?? source.blocks,
    recoveryLen: source.recoveryLen,
    trace: engineTrace,
  });
  const t0 = performance.now();
  const now = () => performance.now() - t0;
  const clock = new EventClock();
  const at = () => clock.at(now());
  let settle!: (o: SendOutcome) => void;
  let reject!: (e: unknown) => void;
  const outcome = new Promise<SendOutcome>((res, rej) => {
    settle = res;
    reject = rej;
  });
  let finished = false;
  let appCheckBusy = false;

  let answered = false;
  const peer = await openUdpPeer(options.host, options.port, (data, receivedAt) => {
    if (finished) return;
    const reply = parseReply(data);
    if (!reply) {
      trace(topic, `ignored a ${data.length}-byte datagram from the device port: not a reply`);
      return;
    }
    answered = true;
    // Timed from when the system received it: read late, it would say the device was late.
    const t = clock.reply(now(), receivedAt === undefined ? undefined : receivedAt - t0);
    apply(engine.onReply(t, { ...reply, seq: source.senderSeq(reply.seq) }));
  }, (e) => {
    // The system would not send there (no route, a broadcast address): say so now rather
    // than wait out the timeout. Once the device has answered, the engine's timers judge
    // an outage (this machine's Wi-Fi may come back).
    const error = answered ? undefined : sendError(e, options.host, options.port);
    if (error) finish(error);
  }, { stampReplies: true });
  // Packets are aimed to the fraction of a millisecond (pacing.ts): a precise timer, made
  // once the socket is open (its worker keeps running until `finish` closes it).
  const timer = preciseAlarm(() => tick());

  // Progress is the transfer's: the boot check afterwards has its own status line.
  const report = () =>
    engine.phase !== "bootcheck" && options.onProgress?.({
      confirmed: engine.confirmed,
      size: source.size,
      retransmits: engine.retransmits,
      block: engine.block,
      elapsedMs: now(),
      phase: engine.phase,
      attempts: engine.attempts,
    });

  function finish(o: SendOutcome | Error): void {
    if (finished) return;
    finished = true;
    timer.close();
    if (appTimer !== undefined) clearTimeout(appTimer);
    options.signal?.removeEventListener("abort", onAbort);
    source.close();
    void peer.close().then(() => (o instanceof Error ? reject(o) : settle(o)));
  }

  function fail(failure: TransferFailure): void {
    finish({
      ok: false,
      failure,
      seconds: now() / 1000,
      confirmed: engine.confirmed,
      retransmits: engine.retransmits,
      block: engine.block,
      packets: engine.packetsSent,
    });
  }

  function onAbort(): void {
    // Ctrl-C: stop at once and send nothing more (never an end packet).
    finish(new InterruptedError("interrupted"));
  }
  options.signal?.addEventListener("abort", onAbort);

  function apply(actions: TransferAction[]): void {
    for (const a of actions) {
      if (finished) return;
      if (a.type === "send") {
        const decided = now();
        const d = source.datagram(a.seq, a.offset, a.len);
        const sending = now();
        peer.send(d);
        const sent = now();
        engine.markSent(a.seq, sent, sent - sending);
        if (now() - decided > 2) {
          trace(
            topic,
            () =>
              `#${a.seq} left ${(now() - decided).toFixed(1)} ms after it was due: signed on ` +
              "the spot (the background signer had not got there)",
          );
        }
        options.onSent?.({
          at: now(),
          kind: a.kind,
          seq: a.seq,
          offset: a.offset,
          len: a.len,
          end: false,
        });
      } else if (a.type === "end") {
        const d = source.endPacket(a.seq);
        peer.send(d);
        options.onSent?.({
          at: now(),
          kind: a.reason,
          seq: parseRequestHeader(d)!.seq,
          offset: 0,
          len: 0,
          end: true,
        });
      } else if (a.type === "status") {
        options.onStatus?.(a.message);
      } else if (a.type === "done") {
        finish({ ok: true, summary: a.result, seconds: now() / 1000 });
        return;
      } else if (a.type === "failed") {
        fail(a.failure);
        return;
      }
    }
    report();
    arm();
  }

  const signing = new SignSchedule(source.size);

  function arm(): void {
    if (finished) return;
    const next = engine.nextTimer();
    if (next === undefined) {
      timer.clear();
      return;
    }
    timer.set(next + t0);
    // While probing, the block size is not known: the source signs what may come first
    // (`openingPackets`), not a run of packets of the largest size.
    if (engine.phase === "transfer") {
      const quiet = Math.max(0, engine.quietUntil() - now());
      const items = signing.next(engine.confirmed, engine.block, quiet, source.signMs);
      if (items.length > 0) source.signAhead(items);
    }
  }

  function tick(): void {
    if (finished) return;
    // What the system has received comes first: a send is decided on every reply so far.
    peer.drain?.();
    if (finished) return;
    apply(engine.onTimer(at()));
  }

  // Once the end packet is out, ask every APP_POLL_MS whether the app answers: the new
  // image booted, and nothing else is left to wait for (the reboot is the device's own).
  function pollApp(): void {
    if (finished || !options.appRunning) return;
    const after = engine.phase === "bootcheck" || engine.phase === "ending";
    if (after && !appCheckBusy) {
      appCheckBusy = true;
      options.appRunning().then((running) => {
        appCheckBusy = false;
        if (running && !finished) apply(engine.onAppRunning(at()));
      }, () => (appCheckBusy = false));
    }
    appTimer = setTimeout(pollApp, APP_POLL_MS);
  }
  let appTimer: ReturnType<typeof setTimeout> | undefined;

  if (options.signal?.aborted) {
    finish(new InterruptedError("interrupted"));
  } else {
    trace(topic, `UDP datagrams to ${options.host}:${options.port}, one packet each`);
    if (options.refusalCheck ?? !options.freshSession) {
      // No reboot is expected: a refusal means the board runs its app, now and later.
      // Its one-byte datagram leaves (synchronously) before the first probe: the OTA
      // server drops it without a signature check, so the probe never meets it in one.
      void udpPortRefused(options.host, options.port, {
        waitMs: REFUSAL_WAIT_MS,
        signal: options.signal,
      }).then((refused) => {
        if (!refused || finished || engine.everAnswered) return;
        trace(
          topic,
          `${options.host}:${options.port} refused the datagram (ICMP port unreachable)`,
        );
        fail({ kind: "not-in-ota-mode" });
      });
    }
    apply(engine.start(at()));
    if (options.bootCheck && options.appRunning) pollApp();
  }
  return await outcome;
}
