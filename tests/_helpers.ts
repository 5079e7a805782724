/** Shared test fixtures: the vendored test vectors (tests/vectors/), temp dirs. */
import { fileURLToPath as fromFileUrl } from "node:url";

export const VECTORS = fromFileUrl(new URL("./vectors/", import.meta.url));
export const ROOT = fromFileUrl(new URL("../", import.meta.url));

// Git keeps no file modes but the executable bit, so a clone has the test keys at 0644, and
// every task that loads a private key warns about that (as ssh does). Tests that read the
// tasks' output need them private, as a user's keys/priv.key is.
for (const entry of Deno.readDirSync(VECTORS)) {
  if (entry.name.endsWith(".pem")) Deno.chmodSync(VECTORS + entry.name, 0o600);
}

export function vector(name: string): Uint8Array {
  return Deno.readFileSync(VECTORS + name);
}

export function vectorText(name: string): string {
  return Deno.readTextFileSync(VECTORS + name);
}

/** A temp dir removed when the test's `await using` scope ends. */
export async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "ota-test-" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}

/**
 * This process's environment without what would make a task behave as it does on the
 * developer's machine rather than as the test says: the `YAOTA_*` defaults, esptool's
 * own variables and the user's config folder (pointed at one that does not exist).
 */
export function hermeticEnv(): Record<string, string> {
  const env = Deno.env.toObject();
  for (const name of Object.keys(env)) {
    if (/^(YAOTA_|ESPTOOL_|WEBREPL_PASSWORD$)/.test(name)) delete env[name];
  }
  return { ...env, XDG_CONFIG_HOME: "/nonexistent/yaota-test-config" };
}

export interface TaskResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a task entry file as a user would (`deno run -A tasks/NAME.ts ...`). */
export async function runTaskFile(
  name: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; stdin?: string } = {},
): Promise<TaskResult> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}tasks/${name}.ts`, ...args],
    cwd: options.cwd ?? ROOT,
    env: { ...hermeticEnv(), NO_COLOR: "1", ...options.env },
    clearEnv: true,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
