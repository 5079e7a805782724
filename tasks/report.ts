/**
 * `deno task report EVENTS...`: the `--events` files of several sites' rollouts folded
 * into one report (Markdown, e.g. a GitHub Actions job summary, or JSON) and one exit
 * code for the whole rollout.
 */
import {
  boolOpt,
  type CommandSpec,
  listOpt,
  parseCommandArgs,
  runTask,
  stringOpt,
  type TaskContext,
} from "../lib/cli/cli.ts";
import { FileError, UsageError } from "../lib/errors.ts";
import { print, printJson } from "../lib/cli/output.ts";
import { foldReport, renderMarkdown, type SiteReport, siteReport } from "../lib/fleet/report.ts";
import { basename, dirname, extname } from "node:path";

export const spec: CommandSpec = {
  name: "report",
  summary: "Fold the --events files of several sites' rollouts into one report and exit code.",
  positionals: "EVENTS...",
  options: {
    expect: {
      type: "string",
      multiple: true,
      arg: "SITE",
      help: "a site that should have reported: without a file it counts as failed",
    },
    summary: {
      type: "string",
      arg: "FILE",
      help: "append the Markdown report to FILE (e.g. $GITHUB_STEP_SUMMARY)",
    },
    json: { type: "boolean", help: "print the report as one JSON object on stdout" },
  },
  notes: [
    "Each EVENTS is a file of `deploy --fleet --events` lines, as SITE=FILE or FILE: the site is " +
    "then the file's name without its extension, or for a file named events.* its folder's " +
    "name without a leading 'events-' (as actions/download-artifact lays out an artifact " +
    "events-SITE).",
    "A site whose file is missing, empty or ends before its run.ended event counts as failed. " +
    "Exit 0 when every site's run ended with 0; 11 (AllDevicesFailed) when no board anywhere " +
    "ended on the build; else 10 (SomeDevicesFailed).",
  ],
  examples: [
    'deno task report --summary "$GITHUB_STEP_SUMMARY" --json events/*/events.jsonl > report.json',
    "deno task report lab=lab.jsonl school=school.jsonl --expect annex",
  ],
};

export interface ReportArgs {
  files: { site: string; path: string }[];
  expect: string[];
  summary?: string;
  json: boolean;
}

/** The site a file reports for (see the notes). Pure. */
export function siteOf(path: string): string {
  const name = basename(path, extname(path));
  if (name !== "events") return name;
  return basename(dirname(path)).replace(/^events-/, "");
}

/** Pure: argv to typed options. @throws {UsageError} */
export function parseReportArgs(argv: string[]): ReportArgs {
  const { values, positionals } = parseCommandArgs(spec, argv);
  const expect = listOpt(values, "expect");
  if (!positionals.length && !expect.length) {
    throw new UsageError("name the events files: e.g. events/*/events.jsonl or SITE=FILE");
  }
  const files = positionals.map((p) => {
    const m = /^([^=/\\]+)=(.+)$/.exec(p);
    return m ? { site: m[1]!, path: m[2]! } : { site: siteOf(p), path: p };
  });
  const seen = new Set<string>();
  for (const f of files) {
    if (seen.has(f.site)) {
      throw new UsageError(`two files for the site '${f.site}': name them SITE=FILE`);
    }
    seen.add(f.site);
  }
  const summary = stringOpt(values, "summary");
  return { files, expect, ...(summary ? { summary } : {}), json: boolOpt(values, "json") };
}

async function readEvents(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return "";
    throw new FileError(`cannot read '${path}': ${(e as Error).message}`);
  }
}

export async function main(ctx: TaskContext): Promise<number> {
  const args = parseReportArgs(ctx.argv);
  const sites: SiteReport[] = [];
  for (const f of args.files) sites.push(siteReport(f.site, await readEvents(f.path)));
  for (const site of args.expect) {
    if (!sites.some((s) => s.site === site)) sites.push(siteReport(site, ""));
  }
  const report = foldReport(sites);
  const markdown = renderMarkdown(report);
  if (args.summary) {
    try {
      await Deno.writeTextFile(args.summary, markdown, { append: true });
    } catch (e) {
      throw new FileError(`cannot append to '${args.summary}': ${(e as Error).message}`);
    }
  }
  if (args.json) printJson(report);
  else print(markdown.trimEnd());
  return report.exitCode;
}

if (import.meta.main) runTask(spec, main);
