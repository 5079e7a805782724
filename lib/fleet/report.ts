/**
 * `report`: the `--events` streams of several sites' rollouts (one `deploy --fleet
 * --events` run per site, e.g. one GitHub Actions job each) folded into one report: per
 * site its outcome and each board's result, the totals, and one exit code for the
 * whole rollout. A site whose stream is missing, cut short or unreadable counts as
 * failed: the report never says "all good" about a site it did not hear from. Pure.
 */
import type { DeviceResult, StampedEvent } from "../deploy/events.ts";
import { EXIT, FLEET_KIND } from "../exit_codes.ts";

/** One board of a site, as its `device.result` said. */
export interface ReportDevice {
  device: string;
  result: DeviceResult;
  reason?: string;
  kind?: string;
  buildBefore?: string;
  buildAfter?: string;
}

export interface SiteReport {
  site: string;
  /** "ok": run.ended with 0; "failed": it ended otherwise; "no-result": no run.ended. */
  outcome: "ok" | "failed" | "no-result";
  /** The site's own exit code, when its run ended. */
  exitCode: number | null;
  /** Why the site failed as a whole (its run stopped on an error, or no result). */
  reason?: string;
  /** The build the site's run sent. */
  build?: string;
  devices: ReportDevice[];
  counts: Record<DeviceResult, number>;
  /** The rollout decision the site took (a canary that failed, K failures, Ctrl-C). */
  decision?: string;
  /** Lines of the stream that were not events (a stream cut mid-line, stray output). */
  badLines: number;
}

/** `report --json`. */
export interface RolloutReport {
  ok: boolean;
  exitCode: number;
  kind?: string;
  sites: SiteReport[];
  counts: Record<DeviceResult, number>;
}

const noCounts = (): Record<DeviceResult, number> => ({
  updated: 0,
  skipped: 0,
  failed: 0,
  "not-attempted": 0,
});

/** The events of one stream, and how many lines were not events. Pure. */
export function parseEventLines(text: string): { events: StampedEvent[]; badLines: number } {
  const events: StampedEvent[] = [];
  let badLines = 0;
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      const value = JSON.parse(line);
      if (value && typeof value === "object" && typeof value.type === "string") events.push(value);
      else badLines++;
    } catch {
      badLines++;
    }
  }
  return { events, badLines };
}

/** One site's report from its events. Pure. */
export function siteReport(site: string, text: string): SiteReport {
  const { events, badLines } = parseEventLines(text);
  const devices = new Map<string, ReportDevice>();
  let build: string | undefined;
  let order: string[] = [];
  let decision: string | undefined;
  let ended: Extract<StampedEvent, { type: "run.ended" }> | undefined;
  for (const e of events) {
    if (e.type === "run.started") {
      build = e.image?.build?.id ?? build;
      order = e.devices ?? [];
    } else if (e.type === "device.result") {
      devices.set(e.device, {
        device: e.device,
        result: e.result,
        ...(e.reason ? { reason: e.reason } : {}),
        ...(e.kind ? { kind: e.kind } : {}),
        ...(e.buildBefore ? { buildBefore: e.buildBefore } : {}),
        ...(e.buildAfter ? { buildAfter: e.buildAfter } : {}),
      });
    } else if (e.type === "rollout.decision") decision = `${e.decision}: ${e.detail}`;
    else if (e.type === "run.ended") ended = e;
  }
  const counts = noCounts();
  for (const d of devices.values()) counts[d.result]++;
  const rank = (name: string) => {
    const i = order.indexOf(name);
    return i < 0 ? order.length : i;
  };
  const outcome = !ended ? "no-result" : ended.ok && ended.exitCode === 0 ? "ok" : "failed";
  const reason = !ended
    ? events.length
      ? "its event stream ends before the run did (the job was cut short?)"
      : "no events (the site's job did not run, or its runner is offline)"
    : ended.reason;
  return {
    site,
    outcome,
    exitCode: ended ? ended.exitCode : null,
    ...(reason && outcome !== "ok" ? { reason } : {}),
    ...(build ? { build } : {}),
    // In the run's own order, not the order the boards finished in.
    devices: [...devices.values()].sort((a, b) => rank(a.device) - rank(b.device)),
    counts,
    ...(decision ? { decision } : {}),
    badLines,
  };
}

/**
 * The sites folded into one report and one exit code: 0 when every site ended with 0;
 * 11 (`AllDevicesFailed`) when no board anywhere ended running the build; else 10
 * (`SomeDevicesFailed`). Pure.
 */
export function foldReport(sites: readonly SiteReport[]): RolloutReport {
  const counts = noCounts();
  for (const s of sites) {
    for (const r of Object.keys(counts) as DeviceResult[]) counts[r] += s.counts[r];
  }
  if (sites.length > 0 && sites.every((s) => s.outcome === "ok")) {
    return { ok: true, exitCode: EXIT.ok, sites: [...sites], counts };
  }
  const none = counts.updated + counts.skipped === 0;
  return {
    ok: false,
    exitCode: none ? EXIT.fleetAllFailed : EXIT.fleetSomeFailed,
    kind: none ? FLEET_KIND.allFailed : FLEET_KIND.someFailed,
    sites: [...sites],
    counts,
  };
}

const ICON: Record<SiteReport["outcome"], string> = {
  ok: "✅",
  failed: "❌",
  "no-result": "⚠️",
};

/** Text from a board or a stream, made safe for a Markdown table cell. */
function cell(text: string): string {
  const printable = [...text].map((c) => {
    const code = c.charCodeAt(0);
    return code < 0x20 || code === 0x7f ? " " : c;
  }).join("");
  return printable.replace(/([|\\`*_<>[\]])/g, "\\$1");
}

function countsText(c: Record<DeviceResult, number>): string {
  return `${c.updated} updated, ${c.skipped} skipped, ${c.failed} failed, ` +
    `${c["not-attempted"]} not attempted`;
}

/** The report as Markdown (a GitHub Actions job summary). Pure. */
export function renderMarkdown(report: RolloutReport): string {
  const lines = [
    `## Rollout: ${
      report.ok ? "✅ every site succeeded" : `❌ exit ${report.exitCode} (${report.kind})`
    }`,
    "",
    `${report.sites.length} site${report.sites.length === 1 ? "" : "s"}; boards: ${
      countsText(report.counts)
    }.`,
    "",
    "| site | outcome | build | boards | note |",
    "| ---- | ------- | ----- | ------ | ---- |",
    ...report.sites.map((s) =>
      `| ${cell(s.site)} | ${ICON[s.outcome]} ${s.outcome}${
        s.exitCode === null ? "" : ` (exit ${s.exitCode})`
      } | ${cell(s.build ?? "-")} | ${countsText(s.counts)} | ${
        cell(
          [s.decision, s.reason, s.badLines ? `${s.badLines} unreadable lines` : ""]
            .filter(Boolean).join("; "),
        )
      } |`
    ),
  ];
  for (const s of report.sites) {
    if (!s.devices.length) continue;
    lines.push("", `### ${cell(s.site)}`, "", "| board | result | build | reason |");
    lines.push("| ----- | ------ | ----- | ------ |");
    for (const d of s.devices) {
      const build = d.buildBefore || d.buildAfter
        ? `${d.buildBefore ?? "?"} → ${d.buildAfter ?? "?"}`
        : "";
      lines.push(
        `| ${cell(d.device)} | ${d.result} | ${cell(build)} | ${
          cell([d.reason, d.kind ? `(${d.kind})` : ""].filter(Boolean).join(" "))
        } |`,
      );
    }
  }
  return lines.join("\n") + "\n";
}
