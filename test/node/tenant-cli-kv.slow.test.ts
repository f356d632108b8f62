/**
 * How the CLI reaches local KV (scripts/lib/kv.ts): the namespace id wrangler dev keys local
 * storage by, and that what the CLI writes is what wrangler's own getPlatformProxy (the API
 * `wrangler dev` shares its persistence layout with) reads from the same state directory.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localNamespaceId, openTenantsKv } from "../../scripts/lib/kv.ts";
import { ROOT } from "./helpers/tenant-cli.ts";

describe("local KV (scripts/lib/kv.ts)", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "tenant-cli-kv-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  it("the TENANTS id of the top-level [[kv_namespaces]] block, preview_id first; [env.*] blocks are not the local one", async () => {
    expect(await localNamespaceId(join(ROOT, "wrangler.toml"))).toBe("00000000000000000000000000000000");
    const preview = write(
      "preview.toml",
      'name = "x"\n[[kv_namespaces]]\nbinding = "OTHER"\nid = "aaaa"\n\n[[kv_namespaces]]\nbinding = "TENANTS"\nid = "bbbb"\npreview_id = "cccc"\n',
    );
    expect(await localNamespaceId(preview)).toBe("cccc");
    const envs = write(
      "envs.toml",
      'name = "x"\n[[kv_namespaces]]\nbinding = "TENANTS"\nid = "top"\n\n[env.staging]\n[[env.staging.kv_namespaces]]\nbinding = "TENANTS"\nid = "staging"\n',
    );
    expect(await localNamespaceId(envs)).toBe("top");
  });

  it("other layouts (JSON, inline tables) through wrangler's own config reader", async () => {
    const json = write(
      "wrangler.json",
      JSON.stringify({ name: "x", kv_namespaces: [{ binding: "TENANTS", id: "from-json" }] }),
    );
    expect(await localNamespaceId(json)).toBe("from-json");
    const inline = write("inline.toml", 'name = "x"\nkv_namespaces = [ { binding = "TENANTS", id = "inline-id" } ]\n');
    expect(await localNamespaceId(inline)).toBe("inline-id");
    const none = write("none.toml", 'name = "x"\n');
    await expect(localNamespaceId(none)).rejects.toThrow(/has no TENANTS KV namespace binding/);
  });

  it("what the CLI writes, wrangler's getPlatformProxy reads on the same state (<state>/v3), and back", async () => {
    const state = join(dir, "state");
    const opened = await openTenantsKv({ root: ROOT, mode: "local", persistTo: state });
    try {
      await opened.kv.put("tenant:layout-check", '{"from":"cli"}');
    } finally {
      await opened.dispose();
    }
    const { getPlatformProxy } = await import("wrangler");
    const proxy = await getPlatformProxy<{ TENANTS: KVLike }>({
      configPath: join(ROOT, "wrangler.toml"),
      persist: { path: join(state, "v3") },
      remoteBindings: false,
    });
    try {
      expect(await proxy.env.TENANTS.get("tenant:layout-check")).toBe('{"from":"cli"}');
      await proxy.env.TENANTS.put("tenant:layout-back", '{"from":"wrangler"}');
    } finally {
      await proxy.dispose();
    }
    const again = await openTenantsKv({ root: ROOT, mode: "local", persistTo: state });
    try {
      expect(await again.kv.get("tenant:layout-back")).toBe('{"from":"wrangler"}');
    } finally {
      await again.dispose();
    }
  });
});

interface KVLike {
  get(key: string): Promise<string | null>;
  put(key: string, value: string): Promise<void>;
}
