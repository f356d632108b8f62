/** The tenant gate's pure decisions: admission, token bucket, backoff, batch outcomes, packing, error codes. */
import { describe, expect, it } from "vitest";
import type { RetryPolicy } from "../../src/config.ts";
import { classifyCallError, isRetryableEntryCode, normalizeErrorCode } from "../../src/eventbridge/codes.ts";
import { type BufferState, decide } from "../../src/tenant-gate/admission.ts";
import { TokenBucket } from "../../src/tenant-gate/bucket.ts";
import { backoffMs, gatherCalls, packCount, planBatchOutcome, retryOrGiveUp } from "../../src/tenant-gate/policy.ts";

const policy: RetryPolicy = { backoffBaseMs: 1000, backoffCapMs: 300_000, maxAttempts: 5, maxAgeMs: 3600_000 };

describe("admission decide()", () => {
  const limits = { ratePerSecond: 10, burst: 2, maxQueuedEntries: 100, maxQueuedBytes: 10_000, shards: 1 };
  /** A buffer holding `queued` entries of 100 bytes, `due` of them due now. */
  function buffer(queued: number, due: number): BufferState {
    return {
      hasDueBacklog: () => due > 0,
      hasRoom: (entries, bytes, l) =>
        queued + entries <= l.maxQueuedEntries && queued * 100 + bytes <= l.maxQueuedBytes,
      retryAfterS: () => 7,
    };
  }

  it("sends at once while there are tokens and no due backlog", () => {
    const b = new TokenBucket(10, 2, 0);
    expect(decide({ entries: 5, bytes: 500 }, limits, 0, b, buffer(0, 0))).toEqual({ kind: "direct" });
    expect(decide({ entries: 5, bytes: 500 }, limits, 0, b, buffer(0, 0))).toEqual({ kind: "direct" });
    expect(b.remaining(0)).toBe(0);
  });

  it("queues behind a due backlog even with tokens left, so the drain keeps order and full batches", () => {
    const b = new TokenBucket(10, 2, 0);
    expect(decide({ entries: 1, bytes: 100 }, limits, 0, b, buffer(3, 3))).toEqual({ kind: "queue" });
    expect(b.remaining(0)).toBe(2); // no token taken
  });

  it("queues without tokens while there is room, refuses as full when there is none", () => {
    const b = new TokenBucket(10, 1, 0);
    b.tryTake(0);
    expect(decide({ entries: 10, bytes: 1000 }, limits, 0, b, buffer(90, 0))).toEqual({ kind: "queue" });
    expect(decide({ entries: 11, bytes: 1100 }, limits, 0, b, buffer(90, 0))).toEqual({ kind: "full", retryAfterS: 7 });
  });

  it("takes no token for a request with no valid entries (nothing is sent)", () => {
    const b = new TokenBucket(10, 1, 0);
    expect(decide({ entries: 0, bytes: 0 }, limits, 0, b, buffer(100, 100))).toEqual({ kind: "direct" });
    expect(b.remaining(0)).toBe(1);
  });
});

describe("TokenBucket", () => {
  it("starts full, spends one token per call, refills at the rate, never above the burst", () => {
    const b = new TokenBucket(2, 3, 0);
    expect([b.tryTake(0), b.tryTake(0), b.tryTake(0), b.tryTake(0)]).toEqual([true, true, true, false]);
    expect(b.waitMs(0)).toBe(500);
    expect(b.tryTake(499)).toBe(false);
    expect(b.tryTake(500)).toBe(true);
    expect(b.remaining(100_000)).toBe(3);
  });

  it("says how long until n tokens are there, n capped at the burst", () => {
    const b = new TokenBucket(50, 5, 0);
    for (let i = 0; i < 5; i++) b.tryTake(0);
    expect(b.waitMs(0)).toBe(20);
    expect(b.waitMs(0, 4)).toBe(80);
    expect(b.waitMs(0, 99)).toBe(100); // the burst, 5 tokens
    expect(b.waitMs(80, 4)).toBe(0);
    expect([b.tryTake(80), b.tryTake(80), b.tryTake(80), b.tryTake(80), b.tryTake(80)]).toEqual([
      true,
      true,
      true,
      true,
      false,
    ]);
    const one = new TokenBucket(1, 1, 0);
    one.tryTake(0);
    expect(one.waitMs(0, 4)).toBe(1000); // a burst of 1 never waits for more than one token
  });

  it("keeps earned tokens when limits change, clamped to the new burst", () => {
    const b = new TokenBucket(1, 10, 0);
    b.configure(5, 2, 0);
    expect(b.remaining(0)).toBe(2);
    expect(b.rate).toBe(5);
    expect(b.burst).toBe(2);
  });
});

describe("backoff", () => {
  it("doubles per attempt between half and all of the step, capped", () => {
    expect(backoffMs(policy, 1, 0)).toBe(500);
    expect(backoffMs(policy, 1, 1)).toBe(1000);
    expect(backoffMs(policy, 3, 0.5)).toBe(3000);
    expect(backoffMs(policy, 30, 1)).toBe(300_000);
  });

  it("gives up after the maximum attempts or age, saying why", () => {
    const row = { relayId: "r", attempts: 0, queuedAt: 0 };
    expect(retryOrGiveUp(policy, row, 5, "InternalFailure", "x", false, 10, 0)).toMatchObject({
      action: "dead",
      message: expect.stringContaining("gave up after 5 attempts"),
    });
    expect(retryOrGiveUp(policy, row, 2, "InternalFailure", "x", false, 3600_000, 0)).toMatchObject({
      action: "dead",
      message: expect.stringContaining("expired"),
    });
    expect(retryOrGiveUp(policy, row, 2, "InternalFailure", "x", true, 10, 0)).toEqual({
      relayId: "r",
      action: "retry",
      nextAt: 1010,
      code: "InternalFailure",
      message: "x",
      attempts: 2,
      outcomeUnknown: true,
    });
  });
});

describe("planBatchOutcome", () => {
  const rows = [0, 1, 2].map((i) => ({ relayId: `r${i}`, attempts: 0, queuedAt: 0 }));

  it("delivers, retries only retryable entries, dead-letters permanent ones", () => {
    const actions = planBatchOutcome(
      policy,
      rows,
      {
        kind: "ok",
        requestId: null,
        entries: [
          { eventId: "e0" },
          { code: "ThrottlingException", message: "slow" },
          { code: "AccessDeniedException", message: "no" },
        ],
      },
      0,
      () => 0,
    );
    expect(actions.map((a) => a.action)).toEqual(["delivered", "retry", "dead"]);
    expect(actions.every((a) => a.attempts === 1)).toBe(true);
  });

  it("retries a whole-call retryable failure together (one jitter draw), dead-letters a rejection", () => {
    let draws = 0;
    const random = () => (draws++, 0.3);
    const retry = planBatchOutcome(
      policy,
      rows,
      {
        kind: "error",
        errorClass: "server",
        code: "InternalException",
        message: "m",
        status: 500,
        requestId: null,
        outcomeUnknown: false,
      },
      0,
      random,
    );
    expect(new Set(retry.map((a) => (a.action === "retry" ? a.nextAt : -1))).size).toBe(1);
    expect(draws).toBe(1);
    const dead = planBatchOutcome(
      policy,
      rows,
      {
        kind: "error",
        errorClass: "rejected",
        code: "ValidationException",
        message: "m",
        status: 400,
        requestId: null,
        outcomeUnknown: false,
      },
      0,
      random,
    );
    expect(dead.every((a) => a.action === "dead" && a.code === "ValidationException")).toBe(true);
  });

  it("marks retries after an unknown outcome", () => {
    const a = planBatchOutcome(
      policy,
      rows,
      {
        kind: "error",
        errorClass: "timeout",
        code: "RequestTimeout",
        message: "m",
        status: 0,
        requestId: null,
        outcomeUnknown: true,
      },
      0,
      () => 0,
    );
    expect(a.every((x) => x.action === "retry" && x.outcomeUnknown)).toBe(true);
  });
});

describe("gatherCalls (calls a rate-limited drain sends per wake)", () => {
  it("gathers what the rate earns in the gather window beyond the first token, 1 to the concurrency", () => {
    expect(gatherCalls(50, 100, 4)).toBe(4); // 1 + 5, capped at 4: a wake every 80 ms, not every 20 ms
    expect(gatherCalls(20, 100, 4)).toBe(3); // 1 + 2: waits 150 ms for 3, at most 100 ms beyond the first
    expect(gatherCalls(10, 100, 4)).toBe(2);
    expect(gatherCalls(9, 100, 4)).toBe(1); // slower tenants wait for one token at a time, as before
    expect(gatherCalls(5, 100, 4)).toBe(1);
    expect(gatherCalls(0.5, 100, 4)).toBe(1);
    expect(gatherCalls(1400, 100, 4)).toBe(4);
    expect(gatherCalls(1400, 100, 1)).toBe(1);
  });
});

describe("packCount", () => {
  it("packs up to 20 entries within the byte cap, in order", () => {
    expect(
      packCount(
        Array.from({ length: 30 }, () => ({ bytes: 10 })),
        20,
        1000,
      ),
    ).toBe(20);
    expect(packCount([{ bytes: 600 }, { bytes: 300 }, { bytes: 200 }], 20, 1000)).toBe(2);
    expect(packCount([{ bytes: 1000 }], 20, 1000)).toBe(1);
  });
});

describe("error codes", () => {
  it("normalises namespaced and suffixed __type values", () => {
    expect(normalizeErrorCode("com.amazonaws.events#ThrottlingException")).toBe("ThrottlingException");
    expect(normalizeErrorCode("ValidationException:http://internal.amazon.com/coral/validate/")).toBe(
      "ValidationException",
    );
    expect(normalizeErrorCode("InternalException")).toBe("InternalException");
  });

  it("classifies whole-call failures", () => {
    expect(classifyCallError(400, "ThrottlingException")).toBe("throttled");
    expect(classifyCallError(429, "")).toBe("throttled");
    expect(classifyCallError(400, "UnrecognizedClientException")).toBe("credentials");
    expect(classifyCallError(403, "SignatureDoesNotMatch")).toBe("credentials");
    expect(classifyCallError(503, "ServiceUnavailable")).toBe("server");
    expect(classifyCallError(400, "ValidationException")).toBe("rejected");
  });

  it("retries only InternalFailure and ThrottlingException per entry", () => {
    expect(["InternalFailure", "ThrottlingException"].every(isRetryableEntryCode)).toBe(true);
    expect(
      ["AccessDeniedException", "InvalidArgument", "MalformedDetail", "NotAuthorizedForSourceException"].some(
        isRetryableEntryCode,
      ),
    ).toBe(false);
  });
});
