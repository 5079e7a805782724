/// <reference lib="dom" />
/**
 * The dashboard in a real browser: `deno task demo --dashboard` (virtual boards, instant
 * profile) driven by Debian's chromium through puppeteer-core. Load the page, see the
 * fleet with its build ids (two boards older, one up to date, one offline), start a canary
 * rollout, watch the older boards reach 100 % and the up-to-date one skipped, see the
 * report and the boards up to date, reload.
 * A screenshot is written to dist/test-artifacts/dashboard.png. Without chromium the test
 * is reported as ignored, with the reason in its name (.ci/run installs it).
 */
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { hermeticEnv, ROOT } from "../_helpers.ts";

/** The browser: CHROME_PATH, else chromium (Debian), chromium-browser or google-chrome on PATH. */
function findChromium(): string | undefined {
  const named = Deno.env.get("CHROME_PATH");
  if (named) return named;
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
      try {
        if (Deno.statSync(join(dir, name)).isFile) return join(dir, name);
      } catch {
        // Not there.
      }
    }
  }
  return undefined;
}

const CHROMIUM = findChromium();
const NAME =
  "dashboard in chromium: see the fleet's builds, run a canary rollout to 100 %, see the report";
export const ARTIFACT = join(ROOT, "dist", "test-artifacts", "dashboard.png");

interface Demo {
  url: string;
  child: Deno.ChildProcess;
  stderr: () => string;
}

/** Starts `deno task demo --dashboard` and waits for the address it prints. */
async function startDemo(): Promise<Demo> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}tasks/demo.ts`,
      "--dashboard",
      "--port",
      "0",
      "--profile",
      "instant",
      "--bits",
      "512",
    ],
    cwd: ROOT,
    env: { ...hermeticEnv(), NO_COLOR: "1" },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let err = "";
  void child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (t) => void (err += t) }),
  );
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!/^dashboard: (\S+)/m.test(out)) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`demo --dashboard ended before serving:\n${out}\n${err}`);
    out += value;
  }
  lines.releaseLock();
  void child.stdout.cancel().catch(() => {});
  return { url: /^dashboard: (\S+)/m.exec(out)![1]!, child, stderr: () => err };
}

Deno.test({
  name: CHROMIUM
    ? NAME
    : `${NAME} [skipped: no chromium on PATH; install it with 'apt-get install -y chromium' ` +
      "(as .ci/run does) or set CHROME_PATH]",
  ignore: CHROMIUM === undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // A test-only package stays out of deno.json, so that running yaota never fetches it.
    // deno-lint-ignore no-import-prefix
    const { default: puppeteer } = await import("npm:puppeteer-core@25.16.0");
    const demo = await startDemo();
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-dev-shm-usage"],
    });
    const pageErrors: string[] = [];
    try {
      const page = await browser.newPage();
      page.on("pageerror", (e) => pageErrors.push(String(e)));
      await page.setViewport({ width: 1400, height: 900 });
      await page.goto(demo.url);

      // The fleet: three boards running their app (two on an older build, one on the
      // current build), one offline; each names its build and the kept release it is.
      await page.waitForFunction(
        () => document.querySelectorAll("#fleet tbody td .badge.ok, td .badge.bad").length >= 5,
        { timeout: 30000 },
      );
      const fleet = await page.$$eval("#fleet tbody tr", (rows) =>
        rows.map((r) => [
          r.getAttribute("data-board"),
          r.children[3]!.textContent!.trim(),
          r.querySelector(".build")!.textContent!.trim(),
          r.querySelector(".release")!.firstChild?.textContent?.trim() ?? "",
          r.children[7]!.querySelector(".badge")!.textContent!.trim(),
        ]));
      const build = await page.$eval("#build-label", (e) => e.textContent!);
      assert(/^[0-9a-f]{12} \(1\.1\.0\)$/.test(build), build);
      const old = fleet[0]![2]!;
      assert(/^[0-9a-f]{12} \(1\.0\.0\)$/.test(old), old);
      assertEquals(fleet, [
        ["kitchen", "online", old, "1.0.0", "older"],
        ["garage", "online", old, "1.0.0", "older"],
        ["hall", "online", build, "1.1.0", "up to date"],
        ["attic", "offline", "–", "–", "unknown"],
      ]);

      // A canary rollout to the whole fleet: the confirmation names the boards and the build.
      assertEquals(await page.$eval("#opt-canary", (e) => (e as HTMLInputElement).value), "1");
      await page.click("#deploy-fleet");
      await page.waitForSelector("#confirm[open]");
      const question = await page.$eval("#confirm-question", (e) => e.textContent!);
      assertStringIncludes(
        question,
        `Send build ${build} to 4 boards (kitchen, garage, hall, attic)? canary 1`,
      );
      await page.click("#confirm-ok");

      // Live progress: each older board reaches 100 %, then the report.
      await page.waitForFunction(
        () =>
          ["kitchen", "garage"].every((n) =>
            document.querySelector(`tr[data-progress="${n}"] .percent`)?.textContent === "100 %"
          ),
        { timeout: 60000 },
      );
      await page.waitForFunction(
        () => document.getElementById("report-summary")!.textContent!.startsWith("Report:"),
        { timeout: 60000 },
      );
      const report = await page.$eval("#report-summary", (e) => e.textContent!);
      assertEquals(report, "Report: 2 updated, 1 skipped (up to date), 1 failed");
      const rows = await page.$$eval("#progress tbody tr", (trs) =>
        trs.map((r) => [
          r.getAttribute("data-progress"),
          r.querySelector(".percent")!.textContent,
          r.querySelector(".result .badge")?.textContent,
        ]));
      assertEquals(rows, [
        ["kitchen", "100 %", "updated"],
        ["garage", "100 %", "updated"],
        ["hall", "0 %", "skipped (up to date)"],
        ["attic", "0 %", "failed"],
      ]);
      const notes = await page.$$eval(
        "#progress tbody tr",
        (trs) => trs.map((r) => r.querySelector(".result .note")?.textContent),
      );
      assertEquals(notes.slice(0, 3), [
        `build ${old.slice(0, 12)} → ${build.slice(0, 12)}`,
        `build ${old.slice(0, 12)} → ${build.slice(0, 12)}`,
        `up to date: it runs build ${build}`,
      ]);
      assertStringIncludes(
        await page.$eval("#decisions", (e) => e.textContent!),
        "the canary runs the new build: starting the other 3",
      );
      // The boards, asked again after the rollout, run the build.
      await page.waitForFunction(
        () =>
          ["kitchen", "garage", "hall"].every((n) =>
            [...document.querySelectorAll(`tr[data-board="${n}"] .badge`)].some((b) =>
              b.textContent === "up to date"
            )
          ),
        { timeout: 30000 },
      );
      assertEquals(
        await page.$$eval("#fleet tbody tr .build", (cells) => cells.map((c) => c.textContent)),
        [build, build, build, "–"],
      );
      await Deno.mkdir(join(ROOT, "dist", "test-artifacts"), { recursive: true });
      await page.screenshot({ path: ARTIFACT as `${string}.png`, fullPage: true });

      // The report survives a reload.
      await page.reload();
      await page.waitForFunction(
        () => document.getElementById("report-summary")!.textContent!.startsWith("Report:"),
      );
      assertEquals(
        await page.$eval("#report-summary", (e) => e.textContent!),
        "Report: 2 updated, 1 skipped (up to date), 1 failed",
      );
      assertEquals(pageErrors, []);
    } finally {
      await browser.close();
      demo.child.kill("SIGINT");
      const status = await demo.child.status;
      assertEquals(status.code, 0, demo.stderr());
    }
    const dir = /kept releases in (\S+)\/dist/.exec(demo.stderr())?.[1];
    assert(dir !== undefined, demo.stderr());
    assertEquals(await Deno.stat(dir).then(() => "left behind", () => "removed"), "removed");
  },
});
