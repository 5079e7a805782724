/**
 * The transfer engine's trace records (`TransferTrace`, from `--verbose`) as lines, and
 * when a pacing change is worth a record. Pure: the engine builds records, the edge
 * (`send_firmware.ts`) renders them with this and hands them to `trace.ts`.
 */
import type { PacingSnapshot, TransferTrace } from "./trace_record.ts";

/** `12.3 ms`, or `?` when not measured yet. */
export function formatMs(x: number | undefined): string {
  return x === undefined ? "?" : `${x.toFixed(1)} ms`;
}

const ms = formatMs;

/** `1 packet`, `2 packets`. */
export function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/** One line for a record, without the timestamp (the sink adds it). Pure. */
export function describeTransferTrace(r: TransferTrace): string {
  switch (r.type) {
    case "send":
      return `send #${r.seq} ${r.kind} offset ${r.offset} len ${r.len}: ${r.why}`;
    case "end":
      return `send #${r.seq} END (${r.reason}, len 0: flush and reboot): ${r.why}`;
    case "reply":
      return `reply #${r.seq} offset ${r.offset} len ${r.len}` +
        (r.answers
          ? ` (to ${r.answers}, round trip ${ms(r.rttMs)}${
            r.sendMs === undefined ? "" : `; its send call took ${ms(r.sendMs)}`
          })`
          : " (no matching packet)") +
        `: ${r.meaning}; confirmed ${r.confirmed}`;
    case "timeout":
      return `timeout: ${r.what}: ${r.then}`;
    case "pacing":
      return `pacing: ${r.why} — ${describePacing(r.pacing)}`;
    case "step":
      return r.text;
  }
}

/** What the pacing model believes, in one line. Pure. */
export function describePacing(p: PacingSnapshot): string {
  const service = p.serviceMs !== undefined
    ? ms(p.serviceMs)
    : `? (taken as ${
      ms(p.phase > 0 ? p.aimMs / p.phase : undefined)
    }, the smallest idle round trip)`;
  return `service ${service}, with a sector write ${ms(p.sectorServiceMs)}, network ` +
    `${ms(p.twoWayMs)} both ways; next packet aimed ${ms(p.aimMs)} into the previous one's ` +
    `service (phase ${p.phase.toFixed(2)}), guard ${ms(p.guardMs)}, ${p.depth} in flight at most` +
    (p.calibrated
      ? p.stopAndWait ? "; stop-and-wait" : ""
      : `; calibrating (${p.idleSamples}/${p.calibrationSamples} idle round trips)`);
}

/**
 * What changed between two pacing snapshots, if enough to report: calibration, the
 * pipeline stopping or resuming, the aim, or a measured time moving by 10 % (and 0.5 ms).
 */
export function pacingChange(
  before: PacingSnapshot | undefined,
  now: PacingSnapshot,
): string | undefined {
  if (before === undefined) {
    return now.serviceMs === undefined && now.idleSamples === 0 ? undefined : "first measurement";
  }
  const reasons: string[] = [];
  if (now.calibrated && !before.calibrated) {
    reasons.push(`calibrated from ${now.idleSamples} idle round trips: pipelining`);
  }
  if (now.stopAndWait !== before.stopAndWait) {
    reasons.push(
      now.stopAndWait
        ? `${now.recentLosses} losses in the last 16 packets: stop-and-wait, the service to be measured again`
        : "losses are rare again: pipelining",
    );
  }
  if (now.steady !== before.steady) {
    reasons.push(
      now.steady
        ? "replies time the device steadily: a deeper pipeline, resends paced behind it"
        : "replies scatter: 3 in flight, resends after the packets in flight",
    );
  }
  if (now.phase !== before.phase) {
    reasons.push(
      now.phase > before.phase
        ? `aim later (phase ${before.phase.toFixed(2)} → ${
          now.phase.toFixed(2)
        }): losses close together`
        : `aim earlier (phase ${before.phase.toFixed(2)} → ${now.phase.toFixed(2)}): 16 clean acks`,
    );
  }
  const moved = (a: number | undefined, b: number | undefined) =>
    a !== b && (a === undefined || b === undefined ||
      Math.abs(a - b) >= Math.max(0.5, 0.1 * Math.abs(a)));
  if (moved(before.serviceMs, now.serviceMs)) {
    reasons.push(`service ${ms(before.serviceMs)} → ${ms(now.serviceMs)}`);
  }
  if (moved(before.sectorServiceMs, now.sectorServiceMs)) {
    reasons.push(`sector service ${ms(before.sectorServiceMs)} → ${ms(now.sectorServiceMs)}`);
  }
  if (moved(before.twoWayMs, now.twoWayMs)) {
    reasons.push(`network ${ms(before.twoWayMs)} → ${ms(now.twoWayMs)} both ways`);
  }
  return reasons.length ? reasons.join("; ") : undefined;
}
