/** `deno task dashboard`: its arguments, what it prints at start, and Ctrl-C. */
import { assertEquals, assertMatch, assertStringIncludes, assertThrows } from "../_assert.ts";
import { hermeticEnv, ROOT, tempDir } from "../_helpers.ts";
import { parseDashboardArgs, startLines } from "../../tasks/dashboard.ts";
import { UsageError } from "../../lib/errors.ts";
import { accessPolicy } from "../../lib/dashboard/access.ts";

Deno.test("parseDashboardArgs() defaults to 127.0.0.1:8267 every 30 s, and checks each option", () => {
  assertEquals(parseDashboardArgs([]), {
    port: 8267,
    host: "127.0.0.1",
    key: undefined,
    refreshMs: 30000,
    config: undefined,
  });
  assertEquals(
    parseDashboardArgs(["--http-port", "0", "--host", "0.0.0.0", "--refresh", "5"]).port,
    0,
  );
  assertThrows(
    () => parseDashboardArgs(["--refresh", "2"]),
    UsageError,
    "--refresh must be at least 5 s (each refresh logs in to every board), got '2'",
  );
  assertThrows(() => parseDashboardArgs(["--refresh", "601"]), UsageError, "--refresh");
  assertThrows(() => parseDashboardArgs(["--http-port", "70000"]), UsageError, "--http-port");
  assertThrows(() => parseDashboardArgs(["extra"]), UsageError, "unexpected argument 'extra'");
});

const SHARE = "The address carries this run's token: only it opens the page (a browser that " +
  "opened it keeps it in a cookie). Whoever has it can deploy to your boards: do not share it.";

Deno.test("startLines() prints the address with the token in every mode, and each address for 0.0.0.0", () => {
  const running = (host: string, ...hosts: string[]) => ({
    urls: hosts.map((h) => `http://${h}:8267/?token=T0K`),
    policy: accessPolicy(host, 8267, "T0K"),
  });
  assertEquals(startLines(running("127.0.0.1", "127.0.0.1"), 1), [
    "dashboard: http://127.0.0.1:8267/?token=T0K  (1 board)",
    SHARE,
    "Ctrl-C stops it (and any rollout it runs: no new board starts).",
  ]);
  assertEquals(startLines(running("0.0.0.0", "192.168.1.23", "127.0.0.1"), 3), [
    "dashboard: http://192.168.1.23:8267/?token=T0K  (3 boards)",
    "       or: http://127.0.0.1:8267/?token=T0K",
    SHARE,
    "listening beyond this machine (0.0.0.0): open the address from a device on the same network",
    "Ctrl-C stops it (and any rollout it runs: no new board starts).",
  ]);
});

function dashboardTask(cwd: string, args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}tasks/dashboard.ts`, ...args],
    cwd,
    env: { ...hermeticEnv(), NO_COLOR: "1" },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

Deno.test("deno task dashboard serves the config's boards on 127.0.0.1 with its token, sets a malformed report aside, and stops on Ctrl-C", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(
    `${dir.path}/ota.config.json`,
    JSON.stringify({ devices: [{ name: "kitchen", ip: "127.0.0.1", port: 9, tags: ["sensor"] }] }),
  );
  // A report it cannot read: it starts all the same, and names the file.
  await Deno.mkdir(`${dir.path}/dist/dashboard`, { recursive: true });
  await Deno.writeTextFile(`${dir.path}/dist/dashboard/last-rollout.json`, "{oops");
  const child = dashboardTask(dir.path, ["--http-port", "0"]);
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("Ctrl-C")) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  assertMatch(out, /^dashboard: http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{43} {2}\(1 board\)\n/);
  const url = new URL(/^dashboard: (\S+)/.exec(out)![1]!);
  const token = url.searchParams.get("token")!;
  // Without the token printed above (another user of the machine): nothing.
  const refused = await fetch(new URL("/", url));
  assertEquals(refused.status, 401);
  await refused.body?.cancel();
  const state = await (await fetch(new URL("/api/state", url), {
    headers: { "x-yaota-token": token },
  })).json();
  assertEquals(state.boards, [{
    name: "kitchen",
    tags: ["sensor"],
    address: "127.0.0.1:9",
    comparison: "unknown",
  }]);
  assertEquals(state.build, null);
  child.kill("SIGINT");
  assertEquals((await child.status).code, 0);
  await reader.cancel();
  const err = await stderr;
  assertStringIncludes(err, "stopping the dashboard…");
  assertMatch(
    err,
    /warning: the last rollout's report dist\/dashboard\/last-rollout\.json could not be read \(it is not JSON \(.*\)\): set aside as dist\/dashboard\/last-rollout\.json\.malformed-\S+; starting without it/,
  );
});

Deno.test("deno task dashboard on a port in use says so in one line and exits 1", async () => {
  await using dir = await tempDir();
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const result = await dashboardTask(dir.path, ["--http-port", String(port)]).output();
  assertEquals(result.code, 1);
  assertEquals(
    new TextDecoder().decode(result.stderr),
    `error: TCP port ${port} on 127.0.0.1 (the dashboard) is already in use: another program ` +
      "(or another sim) holds it. Stop it, or choose another with --http-port PORT (--http-port 0 picks " +
      "a free one).\n",
  );
});
