/**
 * Process CPU time from /proc (Linux only): the workerd processes Miniflare spawns, and the
 * benchmark's own helpers. utime + stime count every thread of the process, in clock ticks.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second for /proc/<pid>/stat (USER_HZ; 100 on Linux/x86 and arm64). */
export const CLOCK_TICKS_PER_SECOND = (() => {
  try {
    const n = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    return Number.isInteger(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

export interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  /** utime + stime, in microseconds (resolution 1 / CLOCK_TICKS_PER_SECOND s). */
  cpuUs: number;
}

/** Parses /proc/<pid>/stat; the comm field is in parentheses and may hold spaces. */
export function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  const comm = text.slice(open + 1, close);
  // Fields after the comm: state(3) ppid(4) ... utime(14) stime(15), 1-based as in proc(5).
  const rest = text.slice(close + 2).split(" ");
  const ppid = Number(rest[1]);
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return { pid, comm, ppid, cpuUs: ((utime + stime) * 1e6) / CLOCK_TICKS_PER_SECOND };
}

/** Every process whose parent is `ppid` (scans /proc/*\/stat). */
export function childrenOf(ppid: number): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s && s.ppid === ppid) out.push(s);
  }
  return out;
}

/** Child processes of this Node process named workerd. */
export function workerdChildren(): ProcStat[] {
  return childrenOf(process.pid).filter((s) => s.comm === "workerd");
}

/** CPU microseconds of one process now (throws when it is gone: a crash mid-run must show). */
export function cpuUs(pid: number): number {
  const s = readStat(pid);
  if (!s) throw new Error(`process ${pid} is gone (did workerd crash?)`);
  return s.cpuUs;
}
