/** How the build tasks show a build's progress: every line on stderr, as it happens. */
import type { BuildReporter } from "../build/make_runner.ts";
import { renderInspectReport } from "./inspect_report.ts";
import { log, logRaw, warn } from "./output.ts";

/**
 * Lines and warnings on stderr, the commands' output passed through as it arrives, and a
 * refused image's inspection as `inspect` shows it.
 */
export function stderrBuildReporter(): BuildReporter {
  return {
    onLine: (line) => log(line),
    onOutput: (text) => logRaw(text),
    onWarning: (message) => warn(message),
    onInspection: (report, file) => {
      for (const line of renderInspectReport(report, file)) log(line);
    },
  };
}
