/**
 * The dashboard on a socket: `Deno.serve` at `host:port` with the access policy for that
 * address (a new token, which only the addresses returned carry). Used by `deno task dashboard` and
 * `deno task demo --dashboard`.
 */
import { listenError } from "../transfer/listen_error.ts";
import {
  type AccessPolicy,
  accessPolicy,
  dashboardUrls,
  type InterfaceAddress,
  isWildcardHost,
  newToken,
} from "./access.ts";
import type { FleetPort } from "./port.ts";
import { createDashboard, type Dashboard } from "./server.ts";

export const DEFAULT_DASHBOARD_HOST = "127.0.0.1";
export const DEFAULT_DASHBOARD_PORT = 8267;

export interface ServeOptions {
  port: FleetPort;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8267; 0 picks a free one. */
  listenPort?: number;
  refreshMs: number;
  reportPath?: string;
  /** A fixed token (tests); default: a new random one. */
  token?: string;
  /** Told what the person should know (a kept report that could not be read). */
  onWarning?: (message: string) => void;
}

export interface RunningDashboard extends AsyncDisposable {
  /** The address to open, with the token (the first of `urls`). */
  url: string;
  /** Every address to open: for a wildcard host, one per address of this machine. */
  urls: string[];
  policy: AccessPolicy;
  dashboard: Dashboard;
  /** Stops the rollout, the streams and the server. */
  close(): Promise<void>;
}

/**
 * Serves the dashboard. Needs `--allow-net` (and read/write for the report).
 * @throws {PortInUseError | ListenError} If the address cannot be listened on.
 */
export async function serveDashboard(options: ServeOptions): Promise<RunningDashboard> {
  const host = options.host ?? DEFAULT_DASHBOARD_HOST;
  const wanted = options.listenPort ?? DEFAULT_DASHBOARD_PORT;
  const token = options.token ?? newToken();
  // The policy needs the real port (it checks the Host header): the dashboard is made
  // once the socket is bound, and requests wait for it.
  let ready: (d: Dashboard) => void = () => {};
  const made = new Promise<Dashboard>((resolve) => (ready = resolve));
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve(
      { hostname: host, port: wanted, onListen: () => {} },
      async (request) => (await made).handler(request),
    );
  } catch (e) {
    throw listenError(e, {
      host,
      port: wanted,
      transport: "TCP",
      purpose: "the dashboard",
      portOption: "--http-port",
      hostOption: "--host",
    });
  }
  const policy = accessPolicy(host, server.addr.port, token);
  let dashboard: Dashboard;
  try {
    dashboard = await createDashboard({
      port: options.port,
      policy,
      refreshMs: options.refreshMs,
      ...(options.reportPath ? { reportPath: options.reportPath } : {}),
      ...(options.onWarning ? { onWarning: options.onWarning } : {}),
    });
  } catch (e) {
    await server.shutdown();
    throw e;
  }
  ready(dashboard);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await dashboard.close();
    await server.shutdown();
  };
  const urls = dashboardUrls(policy, isWildcardHost(host) ? machineAddresses() : []);
  return {
    url: urls[0]!,
    urls,
    policy,
    dashboard,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** This machine's addresses (none when they cannot be listed: needs `--allow-sys`). */
function machineAddresses(): InterfaceAddress[] {
  try {
    return Deno.networkInterfaces();
  } catch {
    return [];
  }
}
