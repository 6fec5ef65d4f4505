// CPU time of the processes a path crosses, from /proc: user + system ticks of a process and
// every descendant (nginx's workers, a container's processes: their pids are visible from the
// host). CPU per request does not swing with the machine's load the way req/s does.
import { readdirSync, readFileSync } from "node:fs";
import { docker } from "./stack.mjs";

const TICK_US = 1e6 / 100; // CLK_TCK is 100 on Linux

function ticksOf(pid) {
  try {
    // Fields after the command name (which may hold spaces): utime is the 12th, stime the 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0; // gone meanwhile
  }
}

function descendants(pid) {
  const all = [pid];
  for (let i = 0; i < all.length; i++) {
    let tasks = [];
    try {
      tasks = readdirSync(`/proc/${all[i]}/task`);
    } catch {}
    for (const task of tasks) {
      try {
        const children = readFileSync(`/proc/${all[i]}/task/${task}/children`, "utf8").trim();
        if (children) all.push(...children.split(" ").map(Number));
      } catch {}
    }
  }
  return all;
}

/** The host pid of each container's first process, in order (one `docker inspect` for all). */
export const containerPids = (names) =>
  docker("inspect", "-f", "{{.State.Pid}}", ...names)
    .split("\n")
    .filter(Boolean)
    .map(Number);

/** The host pid of a container's first process. */
export const containerPid = (name) => containerPids([name])[0];

/** CPU µs used so far by each named process tree: { name: µs }. */
export function cpuSnapshot(processes) {
  const snapshot = {};
  for (const [name, pid] of Object.entries(processes)) {
    snapshot[name] = descendants(pid).reduce((sum, p) => sum + ticksOf(p), 0) * TICK_US;
  }
  return snapshot;
}

/** CPU µs per request of each process between two snapshots. */
export function cpuPerRequest(before, after, requests) {
  return Object.fromEntries(Object.keys(before).map((name) => [name, (after[name] - before[name]) / requests]));
}
