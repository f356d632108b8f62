/**
 * The access authority: which tenant this object serves, the highest record revision it has
 * seen with that revision's status, and every revoked credential. Strongly consistent where KV
 * is not (a KV write takes up to ~60 s to reach every location; this answers the next request).
 *
 * Owns: table `revoked`, and the `tenant_id`, `revision` and `status` rows of `meta` (the
 * `schema_version` row is schema.ts's). Everything is also held in memory, loaded once, so a
 * check costs no query.
 *
 * Self-contained on purpose: it depends on no other module of the gate, so a per-tenant control
 * object can hold the authority and data shards a copy of it, each with this same code.
 */
import type { AccessInput, Principal } from "./protocol.ts";

export type TenantStatus = "active" | "disabled";

/** What survives a purge of the tenant's data: the revision, the status and every revocation. */
export interface AccessState {
  tenantId: string | null;
  revision: number;
  status: TenantStatus;
  revoked: { principal: string; revoked_at: number }[];
}

function principalKey(p: Principal): string {
  return `${p.kind}:${p.id}`;
}

export class Access {
  readonly #storage: DurableObjectStorage;
  readonly #sql: SqlStorage;
  #tenantId: string | null = null;
  #revision = 0;
  #status: TenantStatus = "active";
  readonly #revoked = new Set<string>();

  constructor(storage: DurableObjectStorage) {
    this.#storage = storage;
    this.#sql = storage.sql;
  }

  /** Reads the stored state into memory (after migrate, inside blockConcurrencyWhile). */
  load(): void {
    const meta = new Map(
      this.#sql
        .exec<{ k: string; v: string }>("SELECT k, v FROM meta WHERE k IN ('tenant_id', 'revision', 'status')")
        .toArray()
        .map((r) => [r.k, r.v]),
    );
    this.#tenantId = meta.get("tenant_id") ?? null;
    this.#revision = Number(meta.get("revision") ?? 0);
    this.#status = meta.get("status") === "disabled" ? "disabled" : "active";
    this.#revoked.clear();
    for (const r of this.#sql.exec<{ principal: string }>("SELECT principal FROM revoked").toArray())
      this.#revoked.add(r.principal);
  }

  get tenantId(): string | null {
    return this.#tenantId;
  }
  get revision(): number {
    return this.#revision;
  }
  get status(): TenantStatus {
    return this.#status;
  }

  /**
   * Remembers the tenant id and adopts a newer revision the Worker read from KV. Costs nothing
   * when nothing is new (the common case: no storage work on the hot path).
   */
  learn(tenantId: string, revision: number, status: TenantStatus): void {
    if (this.#tenantId === tenantId && revision <= this.#revision) return;
    this.#storage.transactionSync(() => {
      if (this.#tenantId !== tenantId) {
        this.#tenantId = tenantId;
        this.#setMeta("tenant_id", tenantId);
      }
      if (revision > this.#revision) {
        this.#revision = revision;
        this.#status = status;
        this.#setMeta("revision", String(revision));
        this.#setMeta("status", status);
      }
    });
  }

  /** Why this principal is refused, or null. */
  deny(p: Principal): "revoked" | "disabled" | null {
    if (this.#revoked.has(principalKey(p))) return "revoked";
    if (this.#status === "disabled") return "disabled";
    return null;
  }

  /** Records revocations (permanent) and a status change (if its revision is not older). */
  apply(input: AccessInput, now: number): { revision: number; status: TenantStatus } {
    this.#storage.transactionSync(() => {
      this.#setMeta("tenant_id", input.tenantId);
      this.#tenantId = input.tenantId;
      for (const id of input.revokeApiKeyIds) this.#revoke({ kind: "api-key", id }, now);
      for (const id of input.revokeAccessKeyIds) this.#revoke({ kind: "sigv4", id }, now);
      if (input.revision >= this.#revision) {
        this.#revision = input.revision;
        this.#status = input.status;
        this.#setMeta("revision", String(this.#revision));
        this.#setMeta("status", this.#status);
      }
    });
    return { revision: this.#revision, status: this.#status };
  }

  /**
   * Adopts a copy of the authority's state (the control object's fan-out, control.ts): every
   * revocation in it is added (revocations are permanent: a union), and its status is taken when
   * its revision is not older than this one's. Applying it twice, or an older copy after a newer
   * one, changes nothing.
   */
  merge(state: AccessState, now: number): void {
    const added = state.revoked.filter((r) => !this.#revoked.has(r.principal));
    const adopt = state.revision >= this.#revision;
    // Storage first, memory after the transaction commits: a failed write changes nothing.
    this.#storage.transactionSync(() => {
      if (state.tenantId && this.#tenantId !== state.tenantId) this.#setMeta("tenant_id", state.tenantId);
      for (const r of added)
        this.#sql.exec(
          "INSERT OR IGNORE INTO revoked (principal, revoked_at) VALUES (?, ?)",
          r.principal,
          r.revoked_at || now,
        );
      if (adopt) {
        this.#setMeta("revision", String(state.revision));
        this.#setMeta("status", state.status);
      }
    });
    if (state.tenantId) this.#tenantId = state.tenantId;
    for (const r of added) this.#revoked.add(r.principal);
    if (adopt) {
      this.#revision = state.revision;
      this.#status = state.status;
    }
  }

  /** The state to carry through a purge (read before the storage is cleared). */
  export(): AccessState {
    return {
      tenantId: this.#tenantId,
      revision: this.#revision,
      status: this.#status,
      revoked: this.#sql
        .exec<{ principal: string; revoked_at: number }>("SELECT principal, revoked_at FROM revoked")
        .toArray(),
    };
  }

  /** Writes a purge's carried state back into freshly migrated tables. */
  restore(state: AccessState): void {
    this.#storage.transactionSync(() => {
      if (state.tenantId) this.#setMeta("tenant_id", state.tenantId);
      this.#setMeta("revision", String(state.revision));
      this.#setMeta("status", state.status);
      for (const r of state.revoked)
        this.#sql.exec("INSERT INTO revoked (principal, revoked_at) VALUES (?, ?)", r.principal, r.revoked_at);
    });
  }

  #setMeta(k: string, v: string): void {
    this.#sql.exec("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", k, v);
  }

  #revoke(p: Principal, now: number): void {
    const k = principalKey(p);
    if (this.#revoked.has(k)) return;
    this.#revoked.add(k);
    this.#sql.exec("INSERT OR IGNORE INTO revoked (principal, revoked_at) VALUES (?, ?)", k, now);
  }
}
