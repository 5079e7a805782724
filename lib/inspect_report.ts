/**
 * The human-readable form of an `InspectReport` (lib/inspect.ts): one line per check,
 * the layout, and a verdict. Shared by `inspect`, `build-ota` and `deploy`.
 */
import type { InspectReport } from "./inspect.ts";
import { formatBytes, green, red } from "./output.ts";
import { formatHex } from "./_bytes.ts";

const pct = (x: number) => `${Math.round(x * 100)} %`;

/**
 * Renders the report as lines, the file name first. Pure apart from colour, which
 * follows the terminal (lib/output.ts).
 * @example
 * ```ts
 * import { inspectImage } from "./inspect.ts";
 * import { makeSampleFirmware } from "./sample_firmware.ts";
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
    lines.push(
      `  irom pointers: ${report.link.pointerWords}, best fit ${report.link.bestBaseHex} (${
        pct(report.link.shareAtBest)
      }), at ${report.expectedIromBase} ${pct(report.link.shareAtExpected)}, at 0x40209000 ${
        pct(report.link.shareAtStandard)
      }`,
    );
  }
  if (report.md5) lines.push(`  MD5 trailer: ${report.md5}`);
  const where = `app offset ${formatHex(report.appOffset)} (flash ${
    formatBytes(report.flashSize)
  })`;
  lines.push(
    report.safe
      ? green(`safe to push to ${where}`)
      : red(`NOT safe to push to ${where}: fix the failed checks above`),
  );
  return lines;
}
