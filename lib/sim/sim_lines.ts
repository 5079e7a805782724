/** What `deno task sim` says: a device event as a line, and the mode in its banner. */
import type { DeviceEvent } from "./device.ts";
import { formatHex } from "../_bytes.ts";
import { bold, green, red, yellow } from "../cli/output.ts";

/** A device event worth a line (a session restart, a write below the app, a reboot, a boot). */
export function describe(e: DeviceEvent): string | undefined {
  switch (e.type) {
    case "session-restart":
      return yellow(
        `session restarted (no packet for PKT_WAIT_MS); ${e.staleBytes} stale bytes kept in the buffer`,
      );
    case "flash-write":
      return e.belowApp
        ? red(
          bold(
            `FLASH WRITE AT ${
              formatHex(e.address)
            }, BELOW THE APP: the OTA server is overwritten (bootloaderOverwritten)`,
          ),
        )
        : undefined;
    case "reboot":
      return `rebooting (${e.reason})`;
    case "boot":
      return e.mode === "app"
        ? green(`boot: the app passed boot8266's check and runs`)
        : e.boot === "ota-requested"
        ? "boot: RTC magic found, OTA mode"
        : yellow(
          `boot: ${e.boot === "fail" ? "the app failed boot8266's check" : "no app"}: OTA mode`,
        );
    default:
      return undefined;
  }
}

/** What the device does now, for the banner: OTA mode or its app (and WebREPL or not). Pure. */
export function modeLine(mode: string, webrepl: boolean): string {
  if (mode === "ota") return "in OTA mode (the OTA server answers on UDP)";
  if (mode === "app") {
    return webrepl
      ? "running its app (WebREPL on TCP; UDP closed)"
      : "running its app (UDP closed; no WebREPL: give --webrepl-password)";
  }
  return "rebooting";
}
