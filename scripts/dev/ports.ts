/**
 * A port taken by something else gets one clear sentence and exit 1, before anything starts
 * (wrangler's own message comes after seconds of start-up and a stack of log lines).
 */
import { createServer } from "node:net";
import { DevError } from "./settings.ts";

/** The only address `npm start` binds. */
export const LOOPBACK = "127.0.0.1";

/** Resolves when `port` can be bound on 127.0.0.1 (it is released at once); throws DevError otherwise. */
export async function assertPortFree(port: number, what: string, envName: string): Promise<void> {
  if (port === 0) return;
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ port, host: LOOPBACK, exclusive: true }, () => resolve());
    });
  } catch (e) {
    throw portError(port, what, envName, e);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
}

/** The message for a port that cannot be bound (also used when the race is lost later). */
export function portError(port: number, what: string, envName: string, cause?: unknown): DevError {
  const code = (cause as { code?: string } | undefined)?.code;
  if (code === "EACCES") {
    return new DevError(
      `${what}: not allowed to listen on ${LOOPBACK}:${port}; choose another port, e.g. ${envName}=${suggest(port)} npm start`,
    );
  }
  return new DevError(
    `${what}: port ${port} on ${LOOPBACK} is already in use (another \`npm start\` or \`wrangler dev\`?). ` +
      `Stop it, or choose another port: ${envName}=${suggest(port)} npm start`,
  );
}

export function isAddressInUse(e: unknown): boolean {
  const err = e as { code?: string; message?: string } | undefined;
  return err?.code === "EADDRINUSE" || /address already in use/i.test(err?.message ?? "");
}

function suggest(port: number): number {
  return port >= 65_535 ? port - 1 : port + 1;
}
