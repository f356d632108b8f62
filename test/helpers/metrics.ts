/**
 * A recording Analytics Engine dataset: installed over the Worker's METRICS binding (the env the
 * Worker and its Durable Objects share with the test isolate), it keeps every data point written
 * through the AnalyticsEngineDataset interface. Miniflare's own dataset accepts writes and keeps
 * nothing, so this is how a test sees what an operator's query would.
 */
import { env } from "cloudflare:workers";
import { vi } from "vitest";
import { BLOB_COLUMNS, DOUBLE_COLUMNS } from "../../src/metrics.ts";

export interface RecordedPoint {
  index: string;
  blobs: Record<(typeof BLOB_COLUMNS)[number], string>;
  doubles: Record<(typeof DOUBLE_COLUMNS)[number], number>;
}

export function recordMetrics(): RecordedPoint[] {
  const points: RecordedPoint[] = [];
  vi.spyOn(env.METRICS, "writeDataPoint").mockImplementation((p?: AnalyticsEngineDataPoint) => {
    points.push({
      index: String(p?.indexes?.[0]),
      blobs: Object.fromEntries(BLOB_COLUMNS.map((c, i) => [c, p?.blobs?.[i]])) as RecordedPoint["blobs"],
      doubles: Object.fromEntries(DOUBLE_COLUMNS.map((c, i) => [c, p?.doubles?.[i]])) as RecordedPoint["doubles"],
    });
  });
  return points;
}
