/**
 * The pure part of partner event sources (src/sources/policy.ts) and the control-plane client's
 * error mapping: verdicts per state and policy, what a read changes, the poll's cadence and
 * backoff, expiry, and what a shard does with shard 0's fanned-out states.
 */
import { describe, expect, it } from "vitest";
import { classifyControlPlaneError } from "../../src/eventbridge/control-plane.ts";
import {
  applyMirror,
  applyRead,
  expired,
  mirrorOf,
  newRecord,
  nextCheckAt,
  POLL_ACTIVE_INTERVAL_MS,
  POLL_ERROR_BASE_MS,
  POLL_ERROR_CAP_MS,
  POLL_PENDING_MAX_MS,
  POLL_PENDING_MIN_MS,
  POLL_UNVERIFIABLE_MS,
  readFromAccounts,
  type SourceRecord,
  verdictFor,
} from "../../src/sources/policy.ts";

const NAME = "aws.partner/example.com/c1/orders";
const T0 = 1_800_000_000_000;

function managed(state: "PENDING" | "UNKNOWN" = "PENDING"): SourceRecord {
  return newRecord(NAME, "222222222222", { managed: true, state, arn: null }, T0);
}

const read = (state: "PENDING" | "ACTIVE" | "DELETED", expirationTime: number | null = null) =>
  ({ kind: "read", state, creationTime: T0, expirationTime }) as const;

describe("verdicts", () => {
  it("by state: ACTIVE sends, PENDING holds, DELETED refuses, a managed UNKNOWN holds", () => {
    const r = managed();
    expect(verdictFor(NAME, r, "verify")).toMatchObject({ action: "hold", reason: expect.stringMatching(/PENDING/) });
    expect(verdictFor(NAME, { ...r, state: "ACTIVE" }, "verify")).toEqual({ action: "send" });
    expect(verdictFor(NAME, { ...r, state: "DELETED" }, "verify")).toMatchObject({
      action: "refuse",
      code: "EventSourceDeleted",
    });
    expect(verdictFor(NAME, managed("UNKNOWN"), "verify").action).toBe("hold");
  });

  it("unmanaged by policy: verify forwards on first use, hold holds, forward never tracks", () => {
    expect(verdictFor(NAME, undefined, "verify")).toEqual({ action: "send", firstUse: true });
    expect(verdictFor(NAME, undefined, "hold")).toMatchObject({ action: "hold", firstUse: true });
    expect(verdictFor(NAME, undefined, "forward")).toEqual({ action: "send" });
    const looked = newRecord(NAME, null, { managed: false, state: "UNKNOWN", arn: null }, T0);
    expect(verdictFor(NAME, looked, "verify").action).toBe("send");
    expect(verdictFor(NAME, looked, "hold").action).toBe("hold");
  });

  it("an unverifiable source is sent with a warning, whatever its last state", () => {
    const r = { ...managed(), unverifiable: "not-implemented" as const };
    expect(verdictFor(NAME, r, "verify")).toMatchObject({
      action: "send",
      warning: expect.stringMatching(/implement/),
    });
  });
});

describe("reads", () => {
  it("transitions: PENDING → ACTIVE activates, ACTIVE → PENDING deactivates, → DELETED deletes", () => {
    const active = applyRead(managed(), read("ACTIVE"), T0 + 1);
    expect(active.transition).toBe("activated");
    expect(active.record.nextCheckAt).toBe(T0 + 1 + POLL_ACTIVE_INTERVAL_MS);
    const back = applyRead(active.record, read("PENDING", T0 + 86_400_000), T0 + 2);
    expect(back.transition).toBe("deactivated");
    expect(back.record.pendingSince).toBe(T0 + 2);
    expect(back.record.expirationTime).toBe(T0 + 86_400_000);
    expect(applyRead(back.record, read("DELETED"), T0 + 3).transition).toBe("deleted");
    const gone = applyRead(managed(), { kind: "not-found" }, T0 + 4);
    expect(gone.record).toMatchObject({ state: "DELETED", lastError: "ResourceNotFoundException", nextCheckAt: null });
  });

  it("unverifiable releases what is held once; errors back off and keep the state", () => {
    const u = applyRead(managed(), { kind: "unverifiable", why: "denied", code: "AccessDeniedException" }, T0);
    expect(u.transition).toBe("activated");
    expect(u.record.nextCheckAt).toBe(T0 + POLL_UNVERIFIABLE_MS);
    let r = managed();
    const waits: number[] = [];
    for (let i = 0; i < 8; i++) {
      r = applyRead(r, { kind: "error", code: "ThrottlingException", throttled: true }, T0).record;
      waits.push(r.nextCheckAt! - T0);
    }
    expect(r.state).toBe("PENDING");
    expect(waits.slice(0, 3)).toEqual([POLL_ERROR_BASE_MS, 2 * POLL_ERROR_BASE_MS, 4 * POLL_ERROR_BASE_MS]);
    expect(Math.max(...waits)).toBe(POLL_ERROR_CAP_MS);
    // A good read clears the backoff.
    expect(applyRead(r, read("PENDING"), T0).record.failures).toBe(0);
  });

  it("PENDING is read soon, then at doubling intervals up to the maximum", () => {
    const r = { ...managed(), pendingSince: T0 };
    const steps = [0, 10_000, 30_000, 70_000, 10 * 60_000].map((dt) => nextCheckAt(r, T0 + dt)! - (T0 + dt));
    expect(steps[0]).toBe(POLL_PENDING_MIN_MS);
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    expect(steps.at(-1)).toBe(POLL_PENDING_MAX_MS);
  });

  it("picks the source's own account; an unmanaged source is ACTIVE if any account is", () => {
    const accounts = [
      { account: "111111111111", state: "PENDING" as const, creationTime: T0, expirationTime: T0 + 1 },
      { account: "222222222222", state: "ACTIVE" as const, creationTime: T0, expirationTime: null },
    ];
    expect(readFromAccounts(accounts, "111111111111")).toMatchObject({ kind: "read", state: "PENDING" });
    expect(readFromAccounts(accounts, "333333333333")).toEqual({ kind: "not-found" });
    expect(readFromAccounts(accounts, null)).toMatchObject({ kind: "read", state: "ACTIVE" });
    expect(readFromAccounts([accounts[0]!], null)).toMatchObject({ account: "111111111111" });
  });

  it("a PENDING source past the ExpirationTime AWS reported has expired", () => {
    const r = { ...managed(), expirationTime: T0 + 5 };
    expect(expired(r, T0 + 4)).toBe(false);
    expect(expired(r, T0 + 5)).toBe(true);
    expect(expired({ ...r, state: "ACTIVE" }, T0 + 5)).toBe(false);
  });
});

describe("control-plane errors", () => {
  it("map to what a caller can do", () => {
    expect(classifyControlPlaneError(400, "ThrottlingException", "Rate exceeded")).toBe("throttled");
    expect(classifyControlPlaneError(400, "AccessDeniedException", "not authorized")).toBe("denied");
    expect(classifyControlPlaneError(400, "ResourceNotFoundException", "")).toBe("not-found");
    expect(classifyControlPlaneError(400, "ResourceAlreadyExistsException", "")).toBe("exists");
    expect(
      classifyControlPlaneError(
        500,
        "InternalFailure",
        "The ListPartnerEventSourceAccounts action has not been implemented",
      ),
    ).toBe("not-implemented");
    expect(classifyControlPlaneError(400, "UnknownOperationException", "")).toBe("not-implemented");
    expect(classifyControlPlaneError(400, "ValidationException", "")).toBe("invalid");
    expect(classifyControlPlaneError(503, "ServiceUnavailable", "")).toBe("unavailable");
  });
});

describe("shard 0's states on another shard (applyMirror)", () => {
  const remote = (over: Partial<SourceRecord> = {}) => mirrorOf({ ...managed(), ...over });
  const unmanaged = (state: SourceRecord["state"]): SourceRecord => ({
    ...newRecord(NAME, null, { managed: false, state: "UNKNOWN", arn: null }, T0),
    state,
  });

  it("a source this shard never saw: PENDING holds (re-holding anything queued), ACTIVE releases, DELETED dead-letters", () => {
    expect(applyMirror(undefined, remote({ state: "PENDING" }), T0).transition).toBe("deactivated");
    expect(applyMirror(undefined, remote({ state: "UNKNOWN" }), T0).transition).toBe("deactivated");
    expect(applyMirror(undefined, remote({ state: "ACTIVE" }), T0).transition).toBe("activated");
    expect(applyMirror(undefined, remote({ state: "DELETED" }), T0).transition).toBe("deleted");
  });

  it("the copy is managed and never read from this shard (shard 0 polls)", () => {
    const { record } = applyMirror(unmanaged("ACTIVE"), remote({ state: "PENDING" }), T0 + 5);
    expect(record).toMatchObject({
      managed: true,
      state: "PENDING",
      nextCheckAt: null,
      failures: 0,
      account: "222222222222",
    });
    expect(record.pendingSince).toBe(T0 + 5);
    expect(verdictFor(NAME, record, "forward").action).toBe("hold"); // the tenant's policy no longer applies
  });

  it("an unmanaged source this shard forwarded turns PENDING: its queued entries go back into the hold", () => {
    expect(applyMirror(unmanaged("ACTIVE"), remote({ state: "PENDING" }), T0).transition).toBe("deactivated");
    expect(applyMirror(unmanaged("UNKNOWN"), remote({ state: "PENDING" }), T0).transition).toBe("deactivated");
  });

  it("the same state again changes nothing; a state that only moved on shard 0's schedule is not a change", () => {
    const local = applyMirror(undefined, remote({ state: "ACTIVE" }), T0).record;
    expect(applyMirror(local, remote({ state: "ACTIVE" }), T0 + 1).transition).toBeNull();
    expect(
      applyMirror(local, mirrorOf({ ...managed(), state: "ACTIVE", nextCheckAt: T0 + 9, checkedAt: T0 + 8 }), T0 + 1)
        .transition,
    ).toBeNull();
  });

  it("transitions from this shard's copy: PENDING → ACTIVE releases, ACTIVE → PENDING holds, → DELETED once", () => {
    const pending = applyMirror(undefined, remote({ state: "PENDING" }), T0).record;
    const active = applyMirror(pending, remote({ state: "ACTIVE" }), T0 + 1);
    expect(active.transition).toBe("activated");
    expect(applyMirror(active.record, remote({ state: "PENDING" }), T0 + 2).transition).toBe("deactivated");
    const deleted = applyMirror(active.record, remote({ state: "DELETED", lastError: "Expired" }), T0 + 3);
    expect(deleted.transition).toBe("deleted");
    expect(deleted.record.lastError).toBe("Expired");
    expect(applyMirror(deleted.record, remote({ state: "DELETED", lastError: null }), T0 + 4).transition).toBeNull();
  });

  it("unverifiable on shard 0 (it cannot read the state): forwarded here too", () => {
    const pending = applyMirror(undefined, remote({ state: "PENDING" }), T0).record;
    const r = applyMirror(pending, remote({ state: "PENDING", unverifiable: "denied" }), T0 + 1);
    expect(r.transition).toBe("activated");
    expect(verdictFor(NAME, r.record, "verify")).toMatchObject({ action: "send", warning: expect.any(String) });
  });

  it("what is fanned out leaves the schedule and a failed read's error out, and keeps why a source is DELETED", () => {
    const m = mirrorOf({ ...managed(), failures: 3, lastError: "ThrottlingException", nextCheckAt: T0 + 1 });
    expect(m).not.toHaveProperty("nextCheckAt");
    expect(m.lastError).toBeNull();
    expect(mirrorOf({ ...managed(), state: "DELETED", lastError: "ResourceNotFoundException" }).lastError).toBe(
      "ResourceNotFoundException",
    );
  });
});
