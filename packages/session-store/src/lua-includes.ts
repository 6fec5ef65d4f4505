import { posix } from "node:path";
import { ScriptIncludeError } from "./errors.js";

/** bullmq's directive, on a line of its own: `--- @include "includes/name"` (`.lua` optional). */
const INCLUDE = /^-{2,3}[ \t]*@include[ \t]+(["'])(.+?)\1[; \t\r]*$/;

/**
 * The script at `path` with its `@include` lines replaced by the files they name, recursively,
 * each path relative to the file that includes it. A file is inlined once, at its first include
 * (as bullmq does), so two includes sharing a third do not define its functions twice; a cycle
 * is an error naming the chain rather than a stack overflow.
 */
export function resolveIncludes(path: string, read: (path: string) => string): string {
  const inlined = new Set<string>([path]);
  const expand = (file: string, text: string, chain: string[]): string =>
    text
      .split("\n")
      .map((line) => {
        const name = INCLUDE.exec(line)?.[2];
        if (name === undefined) return line;
        const target = posix.join(posix.dirname(file), name.endsWith(".lua") ? name : `${name}.lua`);
        if (chain.includes(target)) throw new ScriptIncludeError(`include cycle: ${[...chain, target].join(" -> ")}`);
        if (inlined.has(target)) return "";
        inlined.add(target);
        return expand(target, readInclude(target, file, read), [...chain, target]);
      })
      .join("\n");
  return expand(path, read(path), [path]);
}

function readInclude(target: string, from: string, read: (path: string) => string): string {
  try {
    return read(target);
  } catch (error) {
    throw new ScriptIncludeError(`cannot read ${target}, included from ${from}`, { cause: error });
  }
}
