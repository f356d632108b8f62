/**
 * Runs a bundle under workerd through Miniflare 5's API, one Miniflare (one workerd process) per
 * Worker so each has its own CPU counter in /proc. The Worker is reached on a direct socket
 * (`dev.unsafeDirectSockets`), as `workerd serve` would expose it, not through Miniflare's entry
 * worker; its logs are counted here, not printed.
 */
import { Miniflare } from "miniflare";
import type { Bundle } from "./build.ts";
import { workerdChildren } from "./proc.ts";

/** The relay's compatibility settings (wrangler.toml). */
export const COMPATIBILITY_DATE = "2026-11-01";
export const COMPATIBILITY_FLAGS = ["nodejs_compat"];

export interface RunningWorker {
  name: string;
  mf: Miniflare;
  /** http://127.0.0.1:<port> of the Worker's direct socket. */
  url: URL;
  /** The workerd process serving it. */
  pid: number;
  logs: { info: number; warn: number; error: number; samples: string[] };
}

export interface WorkerSpec {
  name: string;
  bundle: Bundle;
  /** Text bindings (vars and secrets). */
  text?: Record<string, string>;
  kv?: string[];
  /** Durable Object bindings → exported SQLite-backed class names. */
  durableObjects?: Record<string, string>;
  /** Opens workerd's DevTools inspector on this port (0: any) for CPU profiles. */
  inspectorPort?: number;
}

export async function startWorker(spec: WorkerSpec): Promise<RunningWorker> {
  const before = new Set(workerdChildren().map((p) => p.pid));
  const logs = { info: 0, warn: 0, error: 0, samples: [] as string[] };
  const env: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(spec.text ?? {})) env[k] = { type: "text", value: v };
  for (const k of spec.kv ?? []) env[k] = { type: "kv" };
  const exportsConfig: Record<string, unknown> = {};
  for (const [binding, className] of Object.entries(spec.durableObjects ?? {})) {
    env[binding] = { type: "durable-object", worker: spec.name, exportName: className };
    exportsConfig[className] = { type: "durable-object", storage: "sqlite" };
  }
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    logRequests: false,
    enableDevRegistry: false,
    ...(spec.inspectorPort !== undefined ? { inspectorPort: spec.inspectorPort, inspectorHost: "127.0.0.1" } : {}),
    handleStructuredLogs: ({ level, message }) => {
      if (level === "error") logs.error++;
      else if (level === "warn") logs.warn++;
      else logs.info++;
      if (level !== "info" && level !== "log" && logs.samples.length < 20) logs.samples.push(`${level}: ${message.slice(0, 300)}`);
    },
    workers: [
      {
        config: {
          name: spec.name,
          compatibilityDate: COMPATIBILITY_DATE,
          compatibilityFlags: COMPATIBILITY_FLAGS,
          manifest: {
            mainModule: spec.bundle.mainModule,
            modulesRoot: spec.bundle.dir,
            modules: { [spec.bundle.mainModule]: { type: "esm", contents: spec.bundle.code } },
          },
          env: env as never,
          ...(Object.keys(exportsConfig).length ? { exports: exportsConfig as never } : {}),
        },
        dev: { unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }] },
      },
    ],
  });
  await mf.ready;
  const url = await mf.unsafeGetDirectURL(spec.name);
  const fresh = workerdChildren().filter((p) => !before.has(p.pid));
  if (fresh.length !== 1) {
    await mf.dispose();
    throw new Error(`expected one new workerd child process for ${spec.name}, found ${fresh.length}`);
  }
  return { name: spec.name, mf, url, pid: fresh[0]!.pid, logs };
}
