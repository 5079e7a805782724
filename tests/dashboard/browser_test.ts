/// <reference lib="dom" />
/**
 * The dashboard in a real browser: `deno task demo --dashboard` (virtual boards, instant
 * profile) driven by Debian's chromium through puppeteer-core, at a desktop and a phone
 * width. Load the page: "checking" with every Deploy disabled until the boards answered;
 * see the fleet with its build ids (two boards older, one up to date, one offline); start a
 * canary rollout, watch the older boards reach 100 % and the up-to-date one skipped, see
 * the report and the fleet up to date; then roll one board back to a kept release (per
 * board) and the whole fleet (every board "older" in the fleet table, as in the report);
 * reload. Screenshots at both widths after the rollout and after the rollback are written
 * to dist/test-artifacts/dashboard-{desktop,phone}-{rollout,rollback}.png. Without chromium
 * the test is reported as ignored, with the reason in its name (.ci/run installs it).
 */
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { hermeticEnv, ROOT } from "../_helpers.ts";
import { fakePort, serve, TOKEN } from "./_dashboard.ts";
import type { BoardStatus } from "../../lib/dashboard/port.ts";

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

/**
 * How long the page may take to show a state: generous, since `deno task test` runs every
 * test file at once on a machine that may have two cores (a bound on a hang, not a goal).
 */
const WAIT_MS = 120_000;
/**
 * puppeteer's wait for one DevTools call (default 180 s): a `waitForFunction` is one such
 * call, and the longest waits here are `2 * WAIT_MS`.
 */
const PROTOCOL_TIMEOUT_MS = 3 * WAIT_MS;
const CHROMIUM = findChromium();
const NAME = "dashboard in chromium, desktop and phone: checking first, a canary rollout to " +
  "100 %, a rollback per board and fleet-wide, the fleet table agreeing with the report";
const ARTIFACTS = join(ROOT, "dist", "test-artifacts");
const DESKTOP = { width: 1400, height: 900 };
const PHONE = { width: 390, height: 844 };

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
      "--http-port",
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
      protocolTimeout: PROTOCOL_TIMEOUT_MS,
      args: ["--no-sandbox", "--disable-dev-shm-usage"],
    });
    const pageErrors: string[] = [];
    try {
      const page = await browser.newPage();
      page.setDefaultTimeout(WAIT_MS);
      page.on("pageerror", (e) => pageErrors.push(String(e)));
      await page.setViewport(DESKTOP);
      await Deno.mkdir(ARTIFACTS, { recursive: true });

      /** The page's width against the screen's, and a screenshot, at both widths. */
      const atBothWidths = async (stage: string) => {
        for (const [name, viewport] of [["desktop", DESKTOP], ["phone", PHONE]] as const) {
          await page.setViewport(viewport);
          const { scrollWidth, innerWidth } = await page.evaluate(() => ({
            scrollWidth: document.documentElement.scrollWidth,
            innerWidth: document.documentElement.clientWidth,
          }));
          assert(scrollWidth <= innerWidth, `${stage}, ${name}: ${scrollWidth} px wide`);
          const path = join(ARTIFACTS, `dashboard-${name}-${stage}.png`);
          await page.screenshot({ path: path as `${string}.png`, fullPage: true });
        }
        await page.setViewport(DESKTOP);
      };
      const fleetRows = () =>
        page.$$eval("#fleet tbody tr", (rows) =>
          rows.map((r) => [
            r.getAttribute("data-board"),
            r.querySelector(".state")!.textContent!.trim(),
            r.querySelector(".build")!.textContent!.trim(),
            r.querySelector(".comparison .badge")!.textContent!.trim(),
          ]));
      const progressRows = () =>
        page.$$eval("#progress tbody tr", (trs) =>
          trs.map((r) => [
            r.getAttribute("data-progress"),
            r.querySelector(".phase")!.textContent,
            r.querySelector(".result .badge")?.textContent,
          ]));
      /** Waits until the fleet table says `text` of every board that runs. */
      const waitComparison = (text: string) =>
        page.waitForFunction(
          (t) =>
            ["kitchen", "garage", "hall"].every((n) =>
              document.querySelector(`tr[data-board="${n}"] .comparison .badge`)?.textContent ===
                t
            ),
          { timeout: WAIT_MS },
          text,
        );
      const waitReport = (text: string) =>
        page.waitForFunction(
          (t) => document.getElementById("report-summary")!.textContent === t,
          { timeout: 2 * WAIT_MS },
          text,
        );

      // Until the boards answered the first time, the page says "checking" and no Deploy
      // button can be pressed (the first check is held back here to look at that state).
      await page.setRequestInterception(true);
      const held = Promise.withResolvers<{ continue(): Promise<void> }>();
      let holding = true;
      page.on("request", (r) => {
        if (holding && r.url().endsWith("/api/refresh")) {
          holding = false;
          held.resolve(r);
        } else void r.continue();
      });
      await page.goto(demo.url);
      const firstCheck = await held.promise;
      await page.waitForFunction(
        () => document.getElementById("fleet-summary")!.textContent === "4 boards: checking…",
      );
      assertEquals(
        await page.$$eval(
          "button",
          (bs) =>
            bs.filter((b) => /Deploy/.test(b.textContent!) && !(b as HTMLButtonElement).disabled)
              .map((b) => b.textContent),
        ),
        [],
      );
      assertEquals(
        (await fleetRows()).map((r) => [r[1], r[3]]),
        Array(4).fill(["checking…", "checking…"]),
      );
      await firstCheck.continue();

      // The fleet: three boards running their app (two on an older build, one on the
      // current build), one offline; each names its build and the kept release it is.
      await page.waitForFunction(
        () => !(document.getElementById("deploy-fleet") as HTMLButtonElement).disabled,
        { timeout: WAIT_MS },
      );
      const build = await page.$eval("#build-label", (e) => e.textContent!);
      assert(/^[0-9a-f]{12} \(1\.1\.0\)$/.test(build), build);
      const fleet = await fleetRows();
      const old = fleet[0]![2]!;
      assert(/^[0-9a-f]{12} \(1\.0\.0\)$/.test(old), old);
      assertEquals(fleet, [
        ["kitchen", "online", old, "older"],
        ["garage", "online", old, "older"],
        ["hall", "online", build, "up to date"],
        ["attic", "offline", "–", "unknown"],
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
        { timeout: 2 * WAIT_MS },
      );
      await waitReport("Report: 2 updated, 1 skipped (up to date), 1 failed");
      // Only an updated board is "done".
      assertEquals(await progressRows(), [
        ["kitchen", "done", "updated"],
        ["garage", "done", "updated"],
        ["hall", "skipped", "skipped (up to date)"],
        ["attic", "failed (while entering OTA mode)", "failed"],
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
      // The boards, asked again as their results came, run the build: the fleet table says
      // what the report says.
      await waitComparison("up to date");
      assertEquals((await fleetRows()).map((r) => r[2]), [build, build, build, "–"]);
      await atBothWidths("rollout");

      // A rollback of one board: the kept release chosen, that board's Deploy.
      const oldId = old.slice(0, 12);
      await page.select("#build-select", oldId);
      await page.$eval("#opt-canary", (e) => ((e as HTMLInputElement).value = "0"));
      await page.$eval("#opt-retries", (e) => ((e as HTMLInputElement).value = "0"));
      // A locator finds the button again if a fleet event redrew the table meanwhile.
      await page.locator('tr[data-board="kitchen"] .action button').click();
      await page.waitForSelector("#confirm[open]");
      assertStringIncludes(
        await page.$eval("#confirm-question", (e) => e.textContent!),
        `Send build ${oldId} (1.0.0) to 1 board (kitchen)?`,
      );
      await page.click("#confirm-ok");
      await waitReport("Report: 1 updated");
      await page.waitForFunction(
        () =>
          document.querySelector('tr[data-board="kitchen"] .comparison .badge')?.textContent ===
            "older",
        { timeout: WAIT_MS },
      );
      assertEquals((await fleetRows())[0], ["kitchen", "online", old, "older"]);

      // ... then the whole fleet, from the kept releases' list.
      await page.locator(`li[data-release="${oldId}"] button`).click();
      await page.waitForSelector("#confirm[open]");
      assertStringIncludes(
        await page.$eval("#confirm-question", (e) => e.textContent!),
        `Send build ${oldId} (1.0.0) to 4 boards (kitchen, garage, hall, attic)?`,
      );
      await page.click("#confirm-ok");
      await waitReport("Report: 2 updated, 1 skipped (up to date), 1 failed");
      assertEquals(await progressRows(), [
        ["kitchen", "skipped", "skipped (up to date)"],
        ["garage", "done", "updated"],
        ["hall", "done", "updated"],
        ["attic", "failed (while entering OTA mode)", "failed"],
      ]);
      // Every board that runs is on the older build now: the fleet table says so too.
      await waitComparison("older");
      assertEquals(await fleetRows(), [
        ["kitchen", "online", old, "older"],
        ["garage", "online", old, "older"],
        ["hall", "online", old, "older"],
        ["attic", "offline", "–", "unknown"],
      ]);
      await atBothWidths("rollback");

      // The report survives a reload.
      await page.reload();
      await waitReport("Report: 2 updated, 1 skipped (up to date), 1 failed");
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

const HOSTILE = "<img src=x onerror=\"document.title='pwned'\">";

Deno.test({
  name: CHROMIUM
    ? "dashboard in chromium: a board's strings are shown as text, never run as HTML"
    : "dashboard in chromium: board strings as text [skipped: no chromium on PATH]",
  ignore: CHROMIUM === undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // deno-lint-ignore no-import-prefix
    const { default: puppeteer } = await import("npm:puppeteer-core@25.16.0");
    // A board whose name, tags, note and build strings are markup.
    const port = fakePort();
    const hostile = (b: BoardStatus): BoardStatus => ({
      ...b,
      name: `${b.name}${HOSTILE}`,
      tags: [HOSTILE],
      note: HOSTILE,
      micropython: { release: "1", version: HOSTILE },
    });
    const status = port.status;
    await using s = await serve({
      ...port,
      boards: () => port.boards().map(hostile),
      status: async (names) =>
        (await status()).map(hostile).filter((b) => !names || names.includes(b.name)),
    });
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      protocolTimeout: PROTOCOL_TIMEOUT_MS,
      args: ["--no-sandbox", "--disable-dev-shm-usage"],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`${s.base}/?token=${TOKEN}`);
      await page.waitForFunction(
        () => document.querySelectorAll("#fleet tbody tr .state .badge.ok").length === 2,
        { timeout: WAIT_MS },
      );
      assertEquals(await page.$$("#fleet img, #tag-select img"), []);
      assertEquals(await page.title(), "yaota dashboard");
      const first = await page.$eval("#fleet tbody tr", (r: Element) => r.textContent!);
      assertStringIncludes(first, `a${HOSTILE}`);
      assertEquals(await page.$eval("#tag-select option", (o: Element) => o.textContent), HOSTILE);
    } finally {
      await browser.close();
    }
  },
});
