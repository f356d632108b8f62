/**
 * Process CPU time from /proc (Linux only): the workerd processes the benchmark spawns, and the
 * benchmark's own helpers. utime + stime count every thread of the process, in clock ticks.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

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
  /** utime and stime alone, in microseconds. */
  userUs: number;
  systemUs: number;
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
  const us = 1e6 / CLOCK_TICKS_PER_SECOND;
  return { pid, comm, ppid, cpuUs: (utime + stime) * us, userUs: utime * us, systemUs: stime * us };
}

/** CPU microseconds of one process now (throws when it is gone: a crash mid-run must show). */
export function cpuUs(pid: number): number {
  const s = readStat(pid);
  if (!s) throw new Error(`process ${pid} is gone (did workerd crash?)`);
  return s.cpuUs;
}

/** User and system CPU microseconds of one process now (throws when it is gone). */
export function userSystemUs(pid: number): { user: number; system: number } {
  const s = readStat(pid);
  if (!s) throw new Error(`process ${pid} is gone (did workerd crash?)`);
  return { user: s.userUs, system: s.systemUs };
}

/** Busy CPU time of the whole machine (all cores) from /proc/stat, in microseconds. */
export function machineBusyUs(): number {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!;
  // cpu user nice system idle iowait irq softirq steal guest guest_nice
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!;
  return (busy * 1e6) / CLOCK_TICKS_PER_SECOND;
}

/**
 * How much CPU processes other than the benchmark's own used: the machine's busy time minus
 * this process tree's (`pids` plus this process), over wall time, in cores. Other people's test
 * runs on a 2-core machine change throughput and latency figures; this says when they did.
 */
export class ForeignLoad {
  #t = 0;
  #busy = 0;
  #own = 0;
  readonly #pids: () => number[];

  constructor(pids: () => number[]) {
    this.#pids = pids;
  }

  #ownUs(): number {
    let n = 0;
    for (const pid of [process.pid, ...this.#pids()]) n += readStat(pid)?.cpuUs ?? 0;
    return n;
  }

  start(): void {
    this.#t = performance.now();
    this.#busy = machineBusyUs();
    this.#own = this.#ownUs();
  }

  /** Cores used by other processes since start(). */
  cores(): number {
    const wallUs = (performance.now() - this.#t) * 1e3;
    if (wallUs <= 0) return 0;
    return Math.max(0, (machineBusyUs() - this.#busy - (this.#ownUs() - this.#own)) / wallUs);
  }
}
