import { judgeTasks, type SwarmTask } from "./swarm-service.js";

/** A task of generation 2 as `GET /tasks` lists it: state, desired state, and how it ended. */
const task = (state: string, desired: string, extra: Partial<SwarmTask> = {}): SwarmTask => ({
  ServiceID: "svc",
  CreatedAt: "2026-11-29T00:00:00Z",
  DesiredState: desired,
  Spec: { ForceUpdate: 2 },
  ...extra,
  Status: { State: state, ContainerStatus: { ContainerID: "c1", ExitCode: 137 }, ...extra.Status },
});

describe("judgeTasks: a Swarm service's current generation", () => {
  it("is live while a task runs", () => {
    expect(judgeTasks([task("failed", "shutdown"), task("running", "running")], 2)).toEqual({ state: "live" });
  });

  it("is starting with no task yet, or with a replacement waiting out its restart delay", () => {
    expect(judgeTasks([], 2)).toEqual({ state: "starting" });
    expect(judgeTasks([task("failed", "shutdown"), task("ready", "ready")], 2)).toEqual({ state: "starting" });
  });

  it("is starting, not failed, while a killed task awaits Swarm's restart decision", () => {
    // The moment after `docker kill`: the task failed, its desired state still says running,
    // and no replacement exists yet. Swarm has not given up; it has not decided yet.
    expect(judgeTasks([task("failed", "running")], 2)).toEqual({ state: "starting" });
  });

  it("is failed once every task ended and Swarm let the last one be (out of restart attempts)", () => {
    const verdict = judgeTasks(
      [
        task("failed", "shutdown", { CreatedAt: "2026-11-29T00:00:01Z" }),
        task("failed", "shutdown", { CreatedAt: "2026-11-29T00:00:03Z", Status: { Err: "non-zero exit (2)" } }),
      ],
      2,
    );
    expect(verdict).toEqual({ state: "failed", reason: "non-zero exit (2)", imageMissing: false, containerId: "c1" });
  });

  it("ignores older generations, so failures ensure already handled do not count again", () => {
    const old = task("failed", "shutdown", { Spec: { ForceUpdate: 1 } });
    expect(judgeTasks([old], 2)).toEqual({ state: "starting" });
  });

  it("is failed at once, image missing, when a task was rejected for its image", () => {
    const rejected = task("rejected", "running", { Status: { Err: "No such image: mcp-broker/x:never" } });
    expect(judgeTasks([rejected], 2)).toMatchObject({ state: "failed", imageMissing: true });
  });
});
