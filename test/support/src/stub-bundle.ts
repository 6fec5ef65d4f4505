import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The outline-stub's one-file bundle, for running it as a plain local process. */
export function stubBundlePath(): string {
  const path = fileURLToPath(new URL("../../../apps/outline-stub/dist/bundle/server.mjs", import.meta.url));
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`npm run build\` first`);
  return path;
}
