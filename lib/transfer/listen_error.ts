/**
 * Binding a socket failed: which port, which address, and what to change, instead of the
 * OS's words ("bind EADDRINUSE 127.0.0.1:8266"). Pure: the caller binds and hands the
 * error here.
 */
import { ListenError, OtaError, PortInUseError } from "../errors.ts";

export interface ListenTarget {
  host: string;
  port: number;
  transport: "UDP" | "TCP";
  /** What listens there, e.g. "the app's WebREPL". */
  purpose?: string;
  /** The option that sets the port, named in the advice (e.g. "--listen-port"). */
  portOption?: string;
  /** The option that sets the address (e.g. "--host"). */
  hostOption?: string;
}

/** The OS error code of a Node or Deno socket error ("EADDRINUSE", ...), if it has one. */
export function errorCode(e: unknown): string | undefined {
  if (typeof e !== "object" || e === null) return undefined;
  const code = (e as { code?: unknown }).code;
  if (typeof code === "string") return code;
  if (e instanceof Deno.errors.AddrInUse) return "EADDRINUSE";
  if (e instanceof Deno.errors.AddrNotAvailable) return "EADDRNOTAVAIL";
  return undefined;
}

/**
 * The typed error for a failed bind (`PortInUseError` for a busy port, `ListenError` for
 * the others), or the error itself when it is not a bind error we know.
 */
export function listenError(e: unknown, target: ListenTarget): unknown {
  if (e instanceof OtaError) return e;
  const code = errorCode(e);
  const what = `${target.transport} port ${target.port} on ${target.host}` +
    (target.purpose ? ` (${target.purpose})` : "");
  const portAdvice = target.portOption
    ? `choose another with ${target.portOption} PORT (${target.portOption} 0 picks a free one)`
    : "choose another port";
  const hostAdvice = target.hostOption
    ? `choose one with ${target.hostOption} ADDR (127.0.0.1 is always there)`
    : "choose another address";
  const message = e instanceof Error ? e.message : String(e);
  switch (code) {
    case "EADDRINUSE":
      return new PortInUseError(
        `${what} is already in use: another program (or another sim) holds it. Stop it, or ${portAdvice}.`,
      );
    case "EADDRNOTAVAIL":
      return new ListenError(
        `cannot listen on ${target.host}: it is not an address of this machine. ${
          cap(hostAdvice)
        }.`,
      );
    case "EACCES":
    case "EPERM":
      return new ListenError(
        `not allowed to listen on ${what}: ports below 1024 need privileges. ${cap(portAdvice)}.`,
      );
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_NONAME":
      return new ListenError(
        `cannot listen on '${target.host}': no such address or host name. ${cap(hostAdvice)}.`,
      );
    case "EAFNOSUPPORT":
      return new ListenError(
        `cannot listen on ${target.host}: this machine has no such network (${code}). ${
          cap(hostAdvice)
        }.`,
      );
  }
  if (e instanceof Error && /failed to lookup address/i.test(message)) {
    return new ListenError(
      `cannot listen on '${target.host}': no such address or host name. ${cap(hostAdvice)}.`,
    );
  }
  return e;
}

function cap(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
