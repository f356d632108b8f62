/**
 * The gate's counters and the last upstream error, for GET /v1/status and the admin API.
 *
 * Owns: the `stats` key of the object's key-value storage (no table). Everything is held in
 * memory and written back as one value with `allowUnconfirmed`: counters are bookkeeping, so the
 * hot path never waits for their durability (the output gate would otherwise hold every reply
 * behind each write). A crash can lose the last few increments; it never loses an event, which
 * lives only in the tables.
 */
import { log } from "../log.ts";

export const COUNTERS = [
  "accepted",
  "delivered",
  "failed",
  "deadLettered",
  "duplicatesPossible",
  "upstreamCalls",
] as const;
export type CounterName = (typeof COUNTERS)[number];

export type LastError = { code: string; message: string; at: number };

/** The longest last-error message kept, in characters (a status field, not a log). */
const LAST_ERROR_MAX_CHARS = 500;

const STATS_KEY = "stats";
type Stats = { counters: Partial<Record<CounterName, number>>; lastError: LastError | null };

export class Counters {
  readonly #storage: DurableObjectStorage;
  readonly #logContext: () => string | null;
  readonly #values = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Record<CounterName, number>;
  #lastError: LastError | null = null;
  #pending = false;

  /** `tenantId` names the tenant in the log line of a failed write. */
  constructor(storage: DurableObjectStorage, tenantId: () => string | null) {
    this.#storage = storage;
    this.#logContext = tenantId;
  }

  /** Reads the stored value (call inside blockConcurrencyWhile). */
  async load(): Promise<void> {
    const stats = await this.#storage.get<Stats>(STATS_KEY);
    if (!stats) return;
    for (const c of COUNTERS) this.#values[c] = stats.counters[c] ?? 0;
    this.#lastError = stats.lastError;
  }

  /** Adds `n` (may be negative: a replay takes entries back out of `failed`). Flush after. */
  add(name: CounterName, n: number): void {
    this.#values[name] += n;
  }

  values(): Readonly<Record<CounterName, number>> {
    return this.#values;
  }

  get lastError(): LastError | null {
    return this.#lastError;
  }

  /** Records the last upstream (or configuration) error and schedules a write. */
  setLastError(code: string, message: string, at: number): void {
    this.#lastError = { code, message: message.slice(0, LAST_ERROR_MAX_CHARS), at };
    this.flush();
  }

  /** Back to zero (the tenant's data was purged); the storage was cleared by the caller. */
  reset(): void {
    for (const c of COUNTERS) this.#values[c] = 0;
    this.#lastError = null;
  }

  /**
   * Schedules one write of the stats after the current synchronous step (callers may be inside
   * transactionSync, which takes no async storage calls); several changes in a step write once.
   */
  flush(): void {
    if (this.#pending) return;
    this.#pending = true;
    queueMicrotask(() => {
      this.#pending = false;
      const stats: Stats = { counters: { ...this.#values }, lastError: this.#lastError };
      this.#storage.put(STATS_KEY, stats, { allowUnconfirmed: true }).catch((e: unknown) => {
        log.error("stats_write_failed", { tenantId: this.#logContext(), error: (e as Error)?.message ?? String(e) });
      });
    });
  }
}
