// One implementation for tests, scripts and the runtime alike: a TCP port free on 127.0.0.1 right now.
export { freePort } from "@mcp-broker/service-runtime";
