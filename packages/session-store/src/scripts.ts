import { readdirSync, readFileSync } from "node:fs";
import type { Redis } from "ioredis";
import { resolveIncludes } from "./lua-includes.js";

/**
 * The Lua scripts in ./lua, named `<name>-<number of keys>.lua`, their shared pieces in
 * ./lua/includes (the bullmq conventions).
 */
export interface StoreScripts {
  touchActivity(...args: (string | number)[]): Promise<[number, number]>;
  claimSessions(...args: (string | number)[]): Promise<string[]>;
  claimRoutes(...args: (string | number)[]): Promise<string[]>;
  releaseLock(...args: (string | number)[]): Promise<number>;
  finishRoute(...args: (string | number)[]): Promise<number>;
  markUnrouted(...args: (string | number)[]): Promise<[string, number] | null>;
  deleteSession(...args: (string | number)[]): Promise<[string, string] | null>;
  remapSession(...args: (string | number)[]): Promise<string | null>;
  reviveSession(...args: (string | number)[]): Promise<[string, string?]>;
  recordState(...args: (string | number)[]): Promise<number>;
  recordToolHints(...args: (string | number)[]): Promise<number>;
  usePooled(...args: (string | number)[]): Promise<[string, string[], string[]]>;
  reserveBackend(...args: (string | number)[]): Promise<number>;
  capSessions(...args: (string | number)[]): Promise<string[]>;
  relayEvent(...args: (string | number)[]): Promise<string | null>;
  markDelivered(...args: (string | number)[]): Promise<number>;
  renewRelay(...args: (string | number)[]): Promise<number>;
  releaseRelay(...args: (string | number)[]): Promise<number>;
  reclaimRoute(...args: (string | number)[]): Promise<string[]>;
  reserveSpare(...args: (string | number)[]): Promise<number>;
  addSpare(...args: (string | number)[]): Promise<number>;
  claimSpare(...args: (string | number)[]): Promise<[string, string | null] | null>;
}

const luaDir = new URL("./lua/", import.meta.url);
const camel = (name: string) => name.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());

/** Read once per process; `defineCommand` sends EVALSHA and falls back to EVAL on NOSCRIPT. */
const definitions = readdirSync(luaDir)
  .map((file) => /^(.+)-(\d+)\.lua$/.exec(file))
  .filter((match): match is RegExpExecArray => match !== null)
  .map(([file, name, keys]) => ({
    name: camel(name as string),
    numberOfKeys: Number(keys),
    lua: resolveIncludes(file as string, (path) => readFileSync(new URL(path, luaDir), "utf8")),
  }));

const defined = new WeakSet<Redis>();

export function defineScripts(redis: Redis): StoreScripts {
  if (defined.has(redis)) return redis as unknown as StoreScripts;
  for (const { name, numberOfKeys, lua } of definitions) {
    // A script named like a Redis command (`touch`) would silently call the command instead.
    if (name in redis) throw new Error(`Lua script ${name} collides with a Redis command name`);
    redis.defineCommand(name, { numberOfKeys, lua });
  }
  defined.add(redis);
  return redis as unknown as StoreScripts;
}
