/** File-URL to path without @std/path (JSR is unreachable). */
import { fileURLToPath } from "node:url";

export function fromFileUrl(url: URL | string): string {
  return fileURLToPath(url);
}
