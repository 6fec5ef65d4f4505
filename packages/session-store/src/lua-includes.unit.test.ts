import { readFileSync } from "node:fs";
import { ScriptIncludeError } from "./errors.js";
import { resolveIncludes } from "./lua-includes.js";

const from = (files: Record<string, string>) => (path: string) => {
  const text = files[path];
  if (text === undefined) throw new Error(`ENOENT: ${path}`);
  return text;
};

describe("resolveIncludes", () => {
  it("inlines includes recursively, relative to the including file, with or without .lua", () => {
    const read = from({
      "main-1.lua": '--- @include "includes/a"\nreturn a()',
      "includes/a.lua": "--- @include 'b.lua'\nlocal function a() return b() end",
      "includes/b.lua": "local function b() return 1 end",
    });
    expect(resolveIncludes("main-1.lua", read)).toBe(
      "local function b() return 1 end\nlocal function a() return b() end\nreturn a()",
    );
  });

  it("inlines a file shared by two includes once, where it is first included", () => {
    const read = from({
      "main-1.lua": '--- @include "includes/a"\n-- @include "includes/b"\nreturn 0',
      "includes/a.lua": '--- @include "shared"\nA',
      "includes/b.lua": '--- @include "shared"\nB',
      "includes/shared.lua": "S",
    });
    expect(resolveIncludes("main-1.lua", read)).toBe("S\nA\n\nB\nreturn 0");
  });

  it("rejects an include cycle, naming the chain", () => {
    const read = from({
      "main-1.lua": '--- @include "includes/a"',
      "includes/a.lua": '--- @include "b"',
      "includes/b.lua": '--- @include "a"',
    });
    expect(() => resolveIncludes("main-1.lua", read)).toThrow(
      "include cycle: main-1.lua -> includes/a.lua -> includes/b.lua -> includes/a.lua",
    );
  });

  it("rejects a script that includes itself through another file", () => {
    const read = from({ "main-1.lua": '--- @include "includes/a"', "includes/a.lua": '--- @include "../main-1"' });
    expect(() => resolveIncludes("main-1.lua", read)).toThrow(ScriptIncludeError);
  });

  it("names the including file when an include is missing", () => {
    const read = from({ "main-1.lua": '--- @include "includes/gone"' });
    expect(() => resolveIncludes("main-1.lua", read)).toThrow(
      expect.objectContaining({
        code: "SCRIPT_INCLUDE",
        message: "cannot read includes/gone.lua, included from main-1.lua",
      }),
    );
  });

  it("leaves the store's scripts with no directive and no spelled key prefix", () => {
    const lua = new URL("./lua/", import.meta.url);
    const read = (path: string) => readFileSync(new URL(path, lua), "utf8");
    for (const script of ["touch-activity-5.lua", "use-pooled-4.lua", "claim-sessions-1.lua", "claim-routes-1.lua"]) {
      const text = resolveIncludes(script, read);
      expect(text).not.toMatch(/@include/);
      expect(text).not.toMatch(/\{u:|'pool'|'route'|'lock'|'s:'/);
    }
  });
});
