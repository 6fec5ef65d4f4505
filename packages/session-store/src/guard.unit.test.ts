import { ReplyError } from "ioredis";
import { StoreUnavailableError } from "./errors.js";
import { guard, guardExec } from "./guard.js";

const batch = (replies: [Error | null, unknown][] | null) => ({ exec: async () => replies });

describe("guard", () => {
  it("turns a lost connection into StoreUnavailableError", async () => {
    await expect(guard(() => Promise.reject(new Error("Connection is closed.")))).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
  });

  it("passes a command error Redis answered (a bug, not an outage) through unchanged", async () => {
    const wrongType = new ReplyError("WRONGTYPE Operation against a key holding the wrong kind of value");
    await expect(guard(() => Promise.reject(wrongType))).rejects.toBe(wrongType);
  });

  it.each([
    "LOADING Redis is loading the dataset in memory",
    "READONLY You can't write against a read only replica.",
    "MASTERDOWN Link with MASTER is down",
  ])("counts the not-serving reply %j as unavailability", async (message) => {
    await expect(guard(() => Promise.reject(new ReplyError(message)))).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});

describe("guardExec", () => {
  it("raises a queued command's error (a pipeline resolves with it) as StoreUnavailableError", async () => {
    const retriesUsedUp = Object.assign(new Error("Reached the max retries per request limit"), {
      name: "MaxRetriesPerRequestError",
    });
    await expect(
      guardExec(
        batch([
          [null, "ok"],
          [retriesUsedUp, null],
        ]),
      ),
    ).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it("returns every reply when none failed", async () => {
    await expect(
      guardExec(
        batch([
          [null, "a"],
          [null, 1],
        ]),
      ),
    ).resolves.toEqual([
      [null, "a"],
      [null, 1],
    ]);
  });

  it("treats an empty result (an aborted transaction) as unavailability", async () => {
    await expect(guardExec(batch(null))).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});
