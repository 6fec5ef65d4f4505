export { createStub, type Stub, type StubOptions, type StubTools } from "./app.js";
export { type Document, DocumentStore } from "./documents.js";
export { type RunningStub, startStub } from "./server.js";
export { fingerprint } from "./tools.js";
