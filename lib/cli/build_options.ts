/** The options `build-ota` and `build-bootloader` share: where and how make runs. */
import { type OptionSpec, type ParsedValues, stringOpt } from "./cli.ts";
import { DEFAULT_IMAGE, type Runtime, RUNTIMES } from "../build/container.ts";
import { UsageError } from "../errors.ts";

/** `--runtime`, `--image`, `--out`, `--dry-run`, each placed where a task's help lists it. */
export const BUILD_OPTIONS = {
  runtime: {
    type: "string",
    arg: "NAME",
    help: "docker, podman or native (make on this machine) (default: docker)",
  },
  image: { type: "string", arg: "IMAGE", help: `container image (default: ${DEFAULT_IMAGE})` },
  out: { type: "string", arg: "DIR", help: "output folder (default: dist)" },
  "dry-run": { type: "boolean", help: "print every file change and command, do nothing" },
} as const satisfies Record<string, OptionSpec>;

/** `--runtime`: docker, podman or native. Pure. @throws {UsageError} For anything else. */
export function runtimeOpt(values: ParsedValues): Runtime | undefined {
  const runtime = stringOpt(values, "runtime");
  if (runtime !== undefined && !RUNTIMES.includes(runtime as Runtime)) {
    throw new UsageError(`--runtime expects one of ${RUNTIMES.join(", ")}, got '${runtime}'`);
  }
  return runtime as Runtime | undefined;
}
