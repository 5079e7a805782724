/**
 * Does a yaota8266.bin log every packet on its serial port? The OTA server's UDP handler
 * (`ota_udp_incoming` in `ota-server/ota.c`) prints five lines per packet, ~150
 * characters: at 115200 baud about 13 ms of a packet's ~15 ms on the device, the real
 * ceiling of every transfer (docs/device.md, "Costs on real hardware"). A bootloader built
 * with `build-bootloader --quiet-log` leaves them out and keeps the error lines. Their
 * format strings are compiled into the binary, so the answer is a byte search. Pure.
 */
import { indexOfBytes } from "../_bytes.ts";

/** The format strings of the lines `ota_udp_incoming` prints for every packet. */
export const PER_PACKET_LOG_FORMATS = [
  "UDP incoming from: %x:%d, data=%p\n",
  "Pkt id: %x\n",
  "offset: %d len: %d\n",
  "Proc1 time: %d\n",
  "Full time: %d\n",
] as const;

/**
 * Lines the OTA server prints only when something is wrong (or at the end), in a quiet
 * build too: they tell an OTA server without the per-packet log from something else.
 */
export const OTA_SERVER_MARKERS = [
  "Unexpected offset\n",
  "Invalid SHA1\n",
  "OTA finished, rexmits: %d\n",
] as const;

export interface PacketLog {
  /**
   * `on`: every per-packet line is there; `off`: none is, but the OTA server's error lines
   * are (a quiet build); `partial`: some are; `unknown`: neither (not an OTA server this
   * tool knows).
   */
  state: "on" | "off" | "partial" | "unknown";
  /** The per-packet formats found. */
  found: string[];
}

const encoder = new TextEncoder();
const has = (binary: Uint8Array, text: string) => indexOfBytes(binary, encoder.encode(text)) >= 0;

/** Which per-packet log lines `binary` holds. Pure. */
export function packetLogOf(binary: Uint8Array): PacketLog {
  const found = PER_PACKET_LOG_FORMATS.filter((f) => has(binary, f));
  if (found.length === PER_PACKET_LOG_FORMATS.length) return { state: "on", found };
  if (found.length > 0) return { state: "partial", found };
  const server = OTA_SERVER_MARKERS.some((m) => has(binary, m));
  return { state: server ? "off" : "unknown", found };
}

const shown = (format: string) => `'${format.replace(/\n$/, "")}'`;

/** A clause for a report line ("logs every packet on its serial port …"); "" if unknown. Pure. */
export function describePacketLog(log: PacketLog): string {
  switch (log.state) {
    case "on":
      return "logs every packet on its serial port (~150 characters, about 13 ms per packet at " +
        "115200 baud: the ceiling of every transfer; 'build-bootloader --quiet-log' builds one " +
        "without)";
    case "off":
      return "quiet: no per-packet serial log (built with --quiet-log), error lines kept";
    case "partial":
      return `logs some lines per packet on its serial port (${log.found.map(shown).join(", ")})`;
    case "unknown":
      return "";
  }
}
