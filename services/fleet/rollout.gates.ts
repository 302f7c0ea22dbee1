import { formatDuration } from './model.js';
import type { RolloutGates } from './model.js';
import type { DeploymentRow } from './rollout.repository.js';

/** A gate check's answer: keep watching, passed (with a note), or failed (with the reason). */
export type Verdict = 'wait' | { ok: true; note?: string } | { ok: false; reason: string };

/** Decides the latency and confidence gates of a healthy device from the heartbeats since its switch. */
export function verify(d: DeploymentRow, gates: RolloutGates, now: number): Verdict {
  const beats = Number(d.latency_count);
  const observed = now - Number(d.healthy_at ?? now);
  if (beats < gates.minHeartbeats && observed < gates.observeMs) return 'wait';
  if (gates.maxLatencyP95Ms !== null && beats > 0) {
    const p95 = Number(d.latency_sum) / beats;
    if (p95 > gates.maxLatencyP95Ms)
      return {
        ok: false,
        reason: `mean p95 latency ${round(p95)} ms over ${beats} heartbeat(s) is above the ${gates.maxLatencyP95Ms} ms gate`,
      };
  }
  const notes: string[] = [];
  if (beats === 0) notes.push(`no heartbeat on the new model within ${formatDuration(gates.observeMs)}`);
  if (gates.confidenceMargin !== null) {
    const count = Number(d.conf_count);
    const baseline = d.baseline_confidence === null ? null : Number(d.baseline_confidence);
    if (baseline === null)
      notes.push('no confidence baseline from the previous model; confidence gate not applied');
    else if (count === 0) notes.push('no confidence reported on the new model; confidence gate not applied');
    else {
      const mean = Number(d.conf_sum) / count;
      if (mean < baseline - gates.confidenceMargin)
        return {
          ok: false,
          reason: `mean top confidence ${round(mean, 3)} is ${round(baseline - mean, 3)} below the previous model's ${round(baseline, 3)} (margin ${gates.confidenceMargin})`,
        };
    }
  }
  return notes.length === 0 ? { ok: true } : { ok: true, note: notes.join('; ') };
}

/** `n` rounded to `digits` decimals, for messages people read. */
export function round(n: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
