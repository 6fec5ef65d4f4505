import { connectClient, eventually, images, resultText } from "@mcp-broker/test-support";
import { requireDocker } from "@mcp-broker/test-support/docker";
import type Docker from "dockerode";
import { fingerprint } from "./tools.js";

describe("outline-stub image", () => {
  let docker: Docker;
  let container: Docker.Container | undefined;

  beforeAll(async () => {
    docker = await requireDocker(images.stub);
  });
  afterAll(async () => {
    await container?.remove({ force: true }).catch(() => {});
  });

  it("runs as a non-root user, answers MCP, and is removed through dockerode", async () => {
    const key = "ol_api_image_test_key";
    container = await docker.createContainer({
      Image: images.stub,
      Env: [`OUTLINE_API_KEY=${key}`],
      Labels: { "mcp-broker.test": "stub-image" },
      HostConfig: { PortBindings: { "3000/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }] } },
      ExposedPorts: { "3000/tcp": {} },
    });
    await container.start();
    const info = await container.inspect();
    expect(info.Config.User).toBe("1000:1000");
    const port = info.NetworkSettings.Ports["3000/tcp"]?.[0]?.HostPort;
    expect(port).toBeTruthy();
    const url = `http://127.0.0.1:${port}/mcp`;

    await eventually(() => fetch(url.replace("/mcp", "/health")).then((r) => r.ok || Promise.reject(r.status)));
    const client = await connectClient(url);
    const whoami = JSON.parse(resultText(await client.callTool({ name: "whoami", arguments: {} })));
    expect(whoami.key).toBe(fingerprint(key));
    await client.close();

    await container.remove({ force: true });
    await expect(container.inspect()).rejects.toMatchObject({ statusCode: 404 });
    container = undefined;
  });
});
