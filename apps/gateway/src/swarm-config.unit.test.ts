import { pino } from "pino";
import { ConfigError, loadConfig } from "./config.js";
import { createDriver } from "./server.js";

const BASE = { KEY_HASH_SECRET: "key-hash-secret-0123456789", AUTH_VERIFY: "off", BACKEND_DRIVER: "swarm" };

describe("BACKEND_DRIVER=swarm", () => {
  it("needs BACKEND_NETWORK: Swarm services publish nothing and are reached on the overlay", () => {
    const failure = (() => {
      try {
        loadConfig(BASE);
      } catch (error) {
        return error as ConfigError;
      }
    })();
    expect(failure).toBeInstanceOf(ConfigError);
    expect(failure?.problems).toEqual(["BACKEND_NETWORK: is required when BACKEND_DRIVER=swarm"]);
  });

  it("builds the Swarm driver", async () => {
    const driver = createDriver(loadConfig({ ...BASE, BACKEND_NETWORK: "mcpb-backends" }), pino({ level: "silent" }));
    expect(driver.kind).toBe("swarm");
    await driver.close();
  });
});
