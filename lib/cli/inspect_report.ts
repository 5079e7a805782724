/**
 * The human-readable form of an `InspectReport` (lib/inspect.ts): one line per check,
 * the layout, and a verdict. Shared by `inspect`, `build-ota` and `deploy`.
 */
import { describePacketLog, describeTrigger } from "../format/bootloader_image.ts";
import type { InspectReport } from "../format/inspect.ts";
import { formatBytes, green, red } from "./output.ts";
import { formatHex } from "../_bytes.ts";

/**
 * Renders the report as lines, the file name first. Pure apart from colour, which
 * follows the terminal (lib/output.ts).
 * @example
 * ```ts
 * import { inspectImage } from "../format/inspect.ts";
 * import { makeSampleFirmware } from "../sim/sample_firmware.ts";
 * import { renderInspectReport } from "./inspect_report.ts";
 * const lines = renderInspectReport(inspectImage(makeSampleFirmware()), "fw.bin");
 * if (!lines.at(-1)!.includes("safe to push")) throw new Error();
 * ```
 */
export function renderInspectReport(report: InspectReport, file?: string): string[] {
  const lines: string[] = [];
  const name = file ? `${file}: ` : "";
  lines.push(
    `${name}${report.size} bytes (${formatBytes(report.size)})${
      report.version ? `, MicroPython ${report.version}` : ""
    }${
      report.build
        ? `, build ${report.build.id}${report.build.version ? ` (${report.build.version})` : ""}`
        : ""
    }`,
  );
  const width = Math.max(...report.checks.map((c) => c.name.length));
  for (const c of report.checks) {
    lines.push(`  ${c.ok ? green("ok  ") : red("FAIL")}  ${c.name.padEnd(width)}  ${c.detail}`);
  }
  if (report.segments.length) {
    lines.push(
      `  RAM segments: ${report.segments.map((s) => `${s.address} (${s.size} bytes)`).join(", ")}${
        report.entry ? `, entry ${report.entry}` : ""
      }`,
    );
  }
  if (report.iromLength !== undefined) {
    lines.push(
      `  irom: ${report.iromLength} bytes at file offset 0x9000, expected link address ${report.expectedIromBase}`,
    );
  }
  if (report.link) {
    const l = report.link;
    lines.push(
      `  irom pointers: ${l.pointerWords} (${l.distinctPointers} distinct), ${l.strings} strings; ` +
        `landing on a string: ${l.bestHits} under ${l.bestBaseHex}, ${l.runnerUpHits} under ` +
        `${l.runnerUpBaseHex} (the next best)`,
    );
  }
  const boot = report.bootloader;
  if (boot) {
    lines.push(`  ${describeTrigger(boot)}`);
    lines.push(`  BOOT button check: ${boot.buttonCheck ? "yes" : "not found"}`);
    lines.push(
      `  serial log: ${
        describePacketLog(boot.packetLog) || "not found (no OTA server log line this tool knows)"
      }`,
    );
    lines.push(
      `  built for app offset: ${
        boot.appOffset === undefined ? "not found" : formatHex(boot.appOffset)
      }`,
    );
    if (boot.key) {
      lines.push(`  built for ${boot.key.label} (modulus at ${formatHex(boot.key.at)})`);
    } else if (boot.keysLookedFor.length) {
      lines.push(`  NOT built for ${boot.keysLookedFor.join(" or ")}: it holds another modulus`);
    }
  }
  if (report.md5) lines.push(`  MD5 trailer: ${report.md5}`);
  const where = `app offset ${formatHex(report.appOffset)} (flash ${
    formatBytes(report.flashSize)
  })`;
  lines.push(
    report.safe
      ? green(`safe to push to ${where}`)
      : report.fileKind.id !== "esp8266"
      ? red(`NOT a firmware image: ${report.fileKind.next}`)
      : red(`NOT safe to push to ${where}: fix the failed checks above`),
  );
  return lines;
}
