/**
 * The documented errors, read from the README's own tables (so the fuzz checks the relay against
 * what partners were told, not against the code): the JSON API's problem codes with their HTTP
 * status ("## Errors"), and the AWS front door's `__type`s with theirs. The admin API's codes
 * (src/admin/routes.ts, docs/admin.md) are added by name: a random path under /admin/ meets them.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PROJECT_ROOT } from "../lib/context.ts";

export interface Documented {
  /** problem+json code → the statuses documented for it. */
  problem: Map<string, Set<number>>;
  /** AWS `__type` → the statuses documented for it. */
  aws: Map<string, Set<number>>;
}

/** The admin API's codes (401 token, 400 tenant id / body, 409 queued on purge, 503 off). */
const ADMIN_CODES: [string, number][] = [
  ["missing_admin_token", 401],
  ["invalid_admin_token", 401],
  ["invalid_tenant_id", 400],
  ["invalid_json", 400],
  ["invalid_request", 400],
  ["events_queued", 409],
  ["admin_disabled", 503],
];

export function readDocumented(root = PROJECT_ROOT): Documented {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const problem = new Map<string, Set<number>>();
  const aws = new Map<string, Set<number>>();
  const add = (m: Map<string, Set<number>>, k: string, s: number) => {
    if (!m.has(k)) m.set(k, new Set());
    m.get(k)!.add(s);
  };
  for (const line of readme.split("\n")) {
    // | 400 | `invalid_json` | ... |   or   | 503 | `tenant_overloaded`, `tenant_gate_unavailable` | ... |
    const p = /^\| (\d{3}) \| ((?:`[a-z_]+`(?:, )?)+) \|/.exec(line);
    if (p) for (const m of p[2]!.matchAll(/`([a-z_]+)`/g)) add(problem, m[1]!, Number(p[1]));
    // | condition | `__type` | HTTP | (the relay's code) |
    const a = /^\| .+ \| `([A-Z][A-Za-z]+)` \| (\d{3}) \|/.exec(line);
    if (a) add(aws, a[1]!, Number(a[2]));
  }
  for (const [k, s] of ADMIN_CODES) add(problem, k, s);
  if (problem.size < 15 || aws.size < 8) {
    throw new Error(`could not read the error tables from README.md (${problem.size} codes, ${aws.size} AWS types)`);
  }
  return { problem, aws };
}
