/**
 * This object's place among the tenant's shards (docs/scaling.md): its index, and the directory
 * the control object last fanned out (how many shards the Worker routes to, how many may send
 * upstream). The senders count divides the tenant's rate, burst and buffer caps between shards
 * (admission.ts), so the shards' upstream calls add up to the tenant's rate, retired shards that
 * still drain a backlog included.
 *
 * Owns: the `shard_index`, `shard_count` and `shard_senders` rows of `meta`. Held in memory too,
 * so the hot path reads no storage. A tenant that never had a directory fanned out (one shard,
 * or an object from before shards) is shard 0 of 1.
 */
import type { DirectoryState } from "./protocol.ts";

export class ShardInfo {
  readonly #storage: DurableObjectStorage;
  #index = 0;
  #directory: DirectoryState | null = null;

  constructor(storage: DurableObjectStorage) {
    this.#storage = storage;
  }

  /** Reads the stored rows (after migrate, inside blockConcurrencyWhile). */
  load(): void {
    const meta = new Map(
      this.#storage.sql
        .exec<{ k: string; v: string }>(
          "SELECT k, v FROM meta WHERE k IN ('shard_index', 'shard_count', 'shard_senders')",
        )
        .toArray()
        .map((r) => [r.k, Number(r.v)]),
    );
    this.#index = meta.get("shard_index") ?? 0;
    const shards = meta.get("shard_count");
    const senders = meta.get("shard_senders");
    this.#directory = shards && senders ? { shards, senders } : null;
  }

  get index(): number {
    return this.#index;
  }

  /** The directory as fanned out, or null (never fanned out: the tenant record alone decides). */
  get directory(): DirectoryState | null {
    return this.#directory;
  }

  /** Remembers which shard this is (from the Worker or the control object); free when known. */
  learnIndex(index: number | undefined): void {
    if (index === undefined || index === this.#index || !Number.isInteger(index) || index < 0) return;
    this.#index = index;
    this.#set("shard_index", index);
  }

  setDirectory(d: DirectoryState): void {
    const shards = Math.max(1, Math.floor(d.shards));
    const senders = Math.max(1, Math.floor(d.senders));
    this.#directory = { shards, senders };
    this.#storage.transactionSync(() => {
      this.#set("shard_count", shards);
      this.#set("shard_senders", senders);
    });
  }

  /** Writes the in-memory values back after a purge cleared the storage (a shard stays a shard). */
  restore(): void {
    this.#storage.transactionSync(() => {
      if (this.#index !== 0) this.#set("shard_index", this.#index);
      if (this.#directory) {
        this.#set("shard_count", this.#directory.shards);
        this.#set("shard_senders", this.#directory.senders);
      }
    });
  }

  #set(k: string, v: number): void {
    this.#storage.sql.exec(
      "INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
      k,
      String(v),
    );
  }
}
