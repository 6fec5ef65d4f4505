// `npm run dev`: the local stack. Until the gateway lands this says so plainly.
console.error("mcp-session-broker: the gateway is not built yet, so there is no stack to run. `npm test` works.");
process.exit(1);
