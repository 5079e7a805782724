/**
 * Typed errors for the failures a user can act on. Each has a stable `name`,
 * reported as `kind` by `--json`; tasks map them to one red line and exit 1.
 * `UsageError` (bad arguments) exits 2. Anything else keeps its stack trace.
 */

export class OtaError extends Error {
  /** Figures for `--json` (how far a transfer got), merged into the error object. */
  details?: Record<string, unknown>;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad command-line arguments or option values: exit code 2. */
export class UsageError extends OtaError {}

/** A configuration file key or value is wrong. */
export class ConfigError extends OtaError {}

/** A key file cannot be used (unreadable, not RSA, exponent not 3). */
export class KeyError extends OtaError {}

/** The device answers, but not for our key (or not at all at the first packet). */
export class KeyMismatchError extends OtaError {}

/** The device stopped answering; retrying may succeed. */
export class DeviceUnreachableError extends OtaError {}

/** The image would not boot at this offset; fix it first (or --force). */
export class UnsafeImageError extends OtaError {}

/** A canned `.ota` file is malformed or its SHA1 trailer does not match. */
export class CannedFileError extends OtaError {}

/** A file the user named is missing or unreadable. */
export class FileError extends OtaError {}

/** The transfer was interrupted by the user (Ctrl-C): exit 130. */
export class InterruptedError extends OtaError {}

/** The new image was sent but the device did not boot it. */
export class BootCheckError extends OtaError {}

/** A container runtime or build command failed. */
export class ContainerRuntimeError extends OtaError {
  constructor(
    message: string,
    readonly exitCode: number | undefined = undefined,
    readonly outputTail: string[] = [],
  ) {
    super(message);
  }
}

/** WebREPL refused us or did not answer as expected. */
export class WebReplError extends OtaError {}

/** A required external tool (esptool, make, docker) is not installed. */
export class ToolMissingError extends OtaError {}

/** A socket could not be opened where asked (the address is not this machine's, ...). */
export class ListenError extends OtaError {}

/** The port is already in use (EADDRINUSE): stop what holds it or choose another. */
export class PortInUseError extends ListenError {}

/**
 * The device address cannot be used: not an address or host name, a name that does not
 * resolve, or not one board (broadcast, multicast, unspecified). Fix it; retrying won't help.
 */
export class AddressError extends OtaError {}

/** Another deploy to the same board (address and port) is running on this machine. */
export class BoardBusyError extends OtaError {}
