import { AnswerTracker } from "./answer-tracker.js";

const event = (message: unknown) => Buffer.from(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
const answer = (id: unknown) => event({ jsonrpc: "2.0", id, result: { content: [] } });
const progress = event({ jsonrpc: "2.0", method: "notifications/progress", params: { progress: 1, id: 9 } });

describe("answer tracker", () => {
  it("knows which requests an event stream answered, read only when asked", () => {
    const tracker = new AnswerTracker([1, "two", 3]);
    tracker.sse(progress);
    tracker.sse(answer("two"));
    expect(tracker.unanswered()).toEqual([1, 3]);
    expect(tracker.answeredAny).toBe(true);
    tracker.sse(answer(1));
    expect(tracker.unanswered()).toEqual([3]);
  });

  it("reads an event split across chunks, at any byte, including inside a multi-byte character", () => {
    const whole = Buffer.concat([progress, event({ jsonrpc: "2.0", id: 7, result: { text: "é€😀" } })]);
    for (let at = 1; at < whole.length; at++) {
      const tracker = new AnswerTracker([7, 8]);
      tracker.sse(whole.subarray(0, at));
      if (at < progress.length) expect(tracker.answeredAny).toBe(false);
      tracker.sse(whole.subarray(at));
      expect(tracker.unanswered()).toEqual([8]);
    }
  });

  it("reads a long stream correctly past the bound on what it keeps unread", () => {
    const tracker = new AnswerTracker([1, 2]);
    for (let i = 0; i < 200; i++) tracker.sse(progress); // over 16 KiB of progress: read on the way
    tracker.sse(answer(2));
    expect(tracker.unanswered()).toEqual([1]);
  });

  it("shows every message to a watcher as it arrives (tools/list annotations)", () => {
    const seen: unknown[] = [];
    const tracker = new AnswerTracker([1], (message) => seen.push(message.id ?? message.method));
    tracker.sse(progress);
    tracker.sse(answer(1));
    expect(seen).toEqual(["notifications/progress", 1]);
    expect(tracker.unanswered()).toEqual([]);
  });

  it("reads a JSON answer once complete", () => {
    const seen: unknown[] = [];
    const tracker = new AnswerTracker([1, 2], (message) => seen.push(message.id));
    const body = Buffer.from(JSON.stringify([{ jsonrpc: "2.0", id: 1, result: {} }]));
    tracker.json(body.subarray(0, 10));
    tracker.json(body.subarray(10));
    tracker.jsonEnd();
    expect(seen).toEqual([1]);
    expect(tracker.unanswered()).toEqual([2]);
  });
});
