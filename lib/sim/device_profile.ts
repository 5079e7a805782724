/**
 * Costs the virtual device charges (docs/device.md, "Costs on real hardware"). `instant`
 * charges nothing per packet; `esp8266` charges the UART log per packet (~150 characters
 * at 115200 baud), the RSA check and the sector erase+write; `esp8266-quiet` is the same
 * board with a bootloader built by `build-bootloader --quiet-log`: no log line per packet
 * (the line per sector written fits the UART's 128-byte FIFO and costs nothing), so the
 * signature check starts at once.
 *
 * Both take time to reboot, as a board does (~1 s): while it reboots the device is
 * silent (nothing answers, nothing is refused), then it boots its app or comes back in
 * OTA mode. Clients rely on that silence: the original `ota_client.py` sends its three
 * end packets after the device has already taken the first one, 0.1 s apart (`live-ota`)
 * or 0.3 s apart (`ota`, a canned file: each end packet waits out one 0.3 s receive
 * timeout), on a connected socket that raises on an ICMP refusal. So `rebootMs` must
 * outlast 0.6 s with a margin, in every profile.
 */

export interface DeviceProfile {
  name: string;
  /** UART logging per datagram handled, ms. */
  logMs: number;
  /** Share of the log written before the signature check starts (~60 of ~150 characters). */
  logBeforeCheck: number;
  /** RSA public operation (e=3) for a 2048-bit modulus, ms; scales with the square of the size. */
  check2048Ms: number;
  /** 4 KiB sector erase + write, ms. */
  sectorWriteMs: number;
  /**
   * From reboot to answering again (MD5 check, OTA server or app start, Wi-Fi), ms. The
   * device is silent meanwhile; never 0 (see above).
   */
  rebootMs: number;
}

export const PROFILES: Record<string, DeviceProfile> = {
  instant: {
    name: "instant",
    logMs: 0,
    logBeforeCheck: 0.4,
    check2048Ms: 0,
    sectorWriteMs: 0,
    rebootMs: 1000,
  },
  esp8266: {
    name: "esp8266",
    logMs: 13,
    logBeforeCheck: 0.4,
    check2048Ms: 4,
    sectorWriteMs: 50,
    rebootMs: 1500,
  },
  "esp8266-quiet": {
    name: "esp8266-quiet",
    logMs: 0,
    logBeforeCheck: 0,
    check2048Ms: 4,
    sectorWriteMs: 50,
    rebootMs: 1500,
  },
};

export function checkMs(profile: DeviceProfile, modulusBytes: number): number {
  return profile.check2048Ms * (modulusBytes / 256) ** 2;
}

/** Per-datagram service time of an accepted packet, without the sector write. */
export function packetServiceMs(profile: DeviceProfile, modulusBytes: number): number {
  return profile.logMs + checkMs(profile, modulusBytes);
}

/**
 * The device-bound rate in bytes/s: what the device reaches if it never waits for the
 * network (its per-packet and per-sector costs only) for `block`-byte packets.
 */
export function deviceBoundRate(
  profile: DeviceProfile,
  modulusBytes: number,
  block: number,
): number {
  const perSector = (4096 / block) * packetServiceMs(profile, modulusBytes) + profile.sectorWriteMs;
  return perSector > 0 ? 4096 / (perSector / 1000) : Infinity;
}
