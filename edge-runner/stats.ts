/** One inference sample. */
interface Sample {
  at: number;
  latencyMs: number;
  top: number | null;
}

/** Rolling inference figures over a time window: fps, latency p50/p95, mean top confidence. */
export class InferenceStats {
  private samples: Sample[] = [];
  private head = 0;

  constructor(
    private readonly windowMs = 30_000,
    private readonly now: () => number = Date.now,
  ) {}

  record(latencyMs: number, topScore: number | null): void {
    this.samples.push({ at: this.now(), latencyMs, top: topScore });
    this.prune();
  }

  /** Figures over the window; zeros and null when nothing ran in it. */
  summary(): {
    fps: number;
    latencyP50Ms: number;
    latencyP95Ms: number;
    meanTopConfidence: number | null;
    count: number;
  } {
    this.prune();
    const live = this.samples.slice(this.head);
    if (live.length === 0)
      return { fps: 0, latencyP50Ms: 0, latencyP95Ms: 0, meanTopConfidence: null, count: 0 };
    const span = Math.max(1000, Math.min(this.windowMs, this.now() - live[0]!.at));
    const lat = live.map((s) => s.latencyMs).sort((a, b) => a - b);
    const tops = live.map((s) => s.top).filter((t): t is number => t !== null);
    return {
      fps: round((live.length * 1000) / span),
      latencyP50Ms: round(percentile(lat, 0.5)),
      latencyP95Ms: round(percentile(lat, 0.95)),
      meanTopConfidence: tops.length === 0 ? null : round(tops.reduce((a, b) => a + b, 0) / tops.length, 4),
      count: live.length,
    };
  }

  private prune(): void {
    const cutoff = this.now() - this.windowMs;
    while (this.head < this.samples.length && this.samples[this.head]!.at < cutoff) this.head++;
    if (this.head > 1024 && this.head > this.samples.length / 2) {
      this.samples = this.samples.slice(this.head);
      this.head = 0;
    }
  }
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

function round(v: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
