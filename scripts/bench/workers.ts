/**
 * Runs a bundle under `workerd serve`: the workerd binary wrangler and Miniflare use, given a
 * config of our own (serialised with Miniflare's `serializeConfig`), one process per Worker so
 * each has its own CPU counter in /proc.
 *
 * Why not Miniflare's API: Miniflare routes every subrequest through an outbound interceptor
 * Worker of its own (and wraps KV and Durable Objects in dev services), which production does
 * not have; it made one subrequest cost about twice what it costs workerd itself. Here the
 * Worker's `globalOutbound` is a network service that reaches loopback only, KV is a small
 * in-memory KV service speaking workerd's KV protocol, and Durable Objects are SQLite-backed on
 * a local disk directory, as `workerd serve` runs them.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Config, type Service, serializeConfig, type Worker_Binding } from "miniflare";
import { lineReader } from "../lib/local-relay.ts";
import type { Bundle } from "./build.ts";
import type { KvWriter } from "./seed.ts";

/** The relay's compatibility settings, as in wrangler.toml (test/node/bench-config.test.ts keeps them equal). */
export const COMPATIBILITY_DATE = "2026-11-01";
export const COMPATIBILITY_FLAGS = ["nodejs_compat_do_not_populate_process_env"];

/** The workerd binary wrangler's own Miniflare runs (the `workerd` package, a dependency of miniflare). */
export const WORKERD = fileURLToPath(new URL("../../node_modules/.bin/workerd", import.meta.url));

/** How long workerd may take to open its sockets, in ms. */
const START_TIMEOUT_MS = 20_000;

export interface RunningWorker {
  name: string;
  /** http://127.0.0.1:<port> of the Worker's socket. */
  url: URL;
  /** The workerd process serving it. */
  pid: number;
  logs: { info: number; warn: number; error: number; samples: string[] };
  /** The KV namespaces' writers (for seeding), by binding name. */
  kv: Record<string, KvWriter>;
  /** DevTools inspector (http://127.0.0.1:<port>) when asked for. */
  inspectorUrl: URL | null;
  stop(): Promise<void>;
}

export interface WorkerSpec {
  name: string;
  bundle: Bundle;
  /** Text bindings (vars and secrets). */
  text?: Record<string, string>;
  kv?: string[];
  /** Durable Object bindings → exported SQLite-backed class names. */
  durableObjects?: Record<string, string>;
  /** Opens workerd's DevTools inspector for CPU profiles. */
  inspector?: boolean;
}

/**
 * An in-memory KV namespace for workerd's `kvNamespace` binding: GET/PUT/DELETE `/<key>`
 * (URL-encoded when `urlencoded=true`), GET `/` lists. Values are kept as bytes.
 */
const KV_SERVICE = `
const store = new Map();
export default {
  async fetch(request) {
    const url = new URL(request.url);
    const raw = url.pathname.slice(1);
    if (request.method === "GET" && raw === "") {
      const prefix = url.searchParams.get("prefix") ?? "";
      const keys = [...store.keys()].filter((k) => k.startsWith(prefix)).sort().map((name) => ({ name }));
      return Response.json({ keys, list_complete: true, cacheStatus: null });
    }
    const key = url.searchParams.get("urlencoded")?.toLowerCase() === "true" ? decodeURIComponent(raw) : raw;
    switch (request.method) {
      case "GET":
        return store.has(key) ? new Response(store.get(key)) : new Response("Not Found", { status: 404 });
      case "PUT":
        store.set(key, new Uint8Array(await request.arrayBuffer()));
        return new Response();
      case "DELETE":
        store.delete(key);
        return new Response();
      default:
        return new Response("Method Not Allowed", { status: 405 });
    }
  },
};
`;

export async function startWorker(spec: WorkerSpec): Promise<RunningWorker> {
  const dir = mkdtempSync(join(tmpdir(), `workerd-${spec.name}-`));
  const port = await freePort();
  const kvPorts: Record<string, number> = {};
  for (const k of spec.kv ?? []) kvPorts[k] = await freePort();
  const inspectorPort = spec.inspector ? await freePort() : null;

  const bindings: Worker_Binding[] = [];
  const services: Service[] = [];
  for (const [name, value] of Object.entries(spec.text ?? {})) bindings.push({ name, text: value });
  for (const k of spec.kv ?? []) {
    const service = `kv:${k}`;
    bindings.push({ name: k, kvNamespace: { name: service } });
    services.push({
      name: service,
      worker: { modules: [{ name: "kv.js", esModule: KV_SERVICE }], compatibilityDate: COMPATIBILITY_DATE },
    });
  }
  const classes = Object.entries(spec.durableObjects ?? {});
  for (const [binding, className] of classes) bindings.push({ name: binding, durableObjectNamespace: { className } });
  const doDir = join(dir, "durable-objects");
  if (classes.length) {
    mkdirSync(doDir, { recursive: true });
    services.push({ name: "do-disk", disk: { path: doDir, writable: true } });
  }
  // Subrequests reach loopback only (the fake EventBridge): nothing leaves the machine.
  services.push({ name: "loopback", network: { allow: ["local"] } });
  services.unshift({
    name: spec.name,
    worker: {
      modules: [{ name: spec.bundle.mainModule, esModule: spec.bundle.code }],
      compatibilityDate: COMPATIBILITY_DATE,
      compatibilityFlags: COMPATIBILITY_FLAGS,
      bindings,
      globalOutbound: { name: "loopback" },
      ...(classes.length
        ? {
            durableObjectNamespaces: classes.map(([, className]) => ({
              className,
              uniqueKey: `${spec.name}-${className}`,
              enableSql: true,
            })),
            durableObjectStorage: { localDisk: "do-disk" },
          }
        : {}),
    },
  });
  const config: Config = {
    services,
    sockets: [
      { name: "http", address: `127.0.0.1:${port}`, http: {}, service: { name: spec.name } },
      ...Object.entries(kvPorts).map(([k, p]) => ({
        name: `kv-${k}`,
        address: `127.0.0.1:${p}`,
        http: {},
        service: { name: `kv:${k}` },
      })),
    ],
    structuredLogging: true,
  };
  const configFile = join(dir, "config.bin");
  writeFileSync(configFile, serializeConfig(config));

  const args = [
    "serve",
    "--binary",
    configFile,
    ...(inspectorPort ? [`--inspector-addr=127.0.0.1:${inspectorPort}`] : []),
  ];
  const child = spawn(WORKERD, args, { stdio: ["ignore", "pipe", "pipe"] });
  const logs = { info: 0, warn: 0, error: 0, samples: [] as string[] };
  let output = "";
  const onLine = (line: string) => {
    if (output.length < 8_000) output += line + "\n";
    let level = "info";
    let message = line;
    try {
      const parsed = JSON.parse(line) as { level?: string; message?: string };
      level = parsed.level ?? "info";
      message = parsed.message ?? line;
    } catch {
      // not a structured line: workerd's own output
    }
    if (level === "error") logs.error++;
    else if (level === "warn") logs.warn++;
    else logs.info++;
    if (level !== "info" && level !== "log" && logs.samples.length < 20)
      logs.samples.push(`${level}: ${message.slice(0, 300)}`);
  };
  for (const stream of [child.stdout!, child.stderr!]) lineReader(stream, onLine);

  const url = new URL(`http://127.0.0.1:${port}`);
  const stop = async () => {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitListening(child, port, () => output);
    for (const p of Object.values(kvPorts)) await waitListening(child, p, () => output);
  } catch (e) {
    await stop();
    throw e;
  }
  const kv: Record<string, KvWriter> = {};
  for (const [k, p] of Object.entries(kvPorts)) {
    kv[k] = {
      async put(key, value) {
        const r = await fetch(`http://127.0.0.1:${p}/${encodeURIComponent(key)}?urlencoded=true`, {
          method: "PUT",
          body: value,
        });
        if (!r.ok) throw new Error(`KV put ${key}: ${r.status}`);
      },
    };
  }
  return {
    name: spec.name,
    url,
    pid: child.pid!,
    logs,
    kv,
    inspectorUrl: inspectorPort ? new URL(`http://127.0.0.1:${inspectorPort}`) : null,
    stop,
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitListening(child: ChildProcess, port: number, output: () => string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `workerd exited (${child.exitCode ?? child.signalCode}) before listening:\n${output().slice(-4000)}`,
      );
    }
    try {
      await fetch(`http://127.0.0.1:${port}/`, { method: "HEAD", signal: AbortSignal.timeout(1_000) });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(
    `workerd did not listen on 127.0.0.1:${port} within ${START_TIMEOUT_MS} ms:\n${output().slice(-4000)}`,
  );
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill("SIGKILL"), 2_000);
    child.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill("SIGTERM");
  });
}
