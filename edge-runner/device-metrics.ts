import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What the metrics read at scrape time. */
export interface DeviceMetricsSource {
  fps(): number;
  model(): { versionId: string; name: string; version: number; provider: string } | undefined;
  feedback():
    | { low_confidence: number; disagreement: number; capped: number; uploaded: number; dropped: number }
    | undefined;
  telemetry(): { buffered: number; dropped: number };
  framesDropped(): number;
}

/** Prometheus metrics of one edge runner (own registry, so many runners can share a process). */
export interface DeviceMetrics {
  registry: Registry;
  frames: Counter;
  inferenceSeconds: Histogram;
  inferenceErrors: Counter;
  deploys: Counter<'outcome'>;
}

/** Creates the device registry: frames, latency histogram, fps, model version info, feedback and telemetry buffer counts. */
export function createDeviceMetrics(deviceId: string, source: DeviceMetricsSource): DeviceMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ device: deviceId });
  const frames = new Counter({
    name: 'visioninapp_edge_frames_total',
    help: 'Frames inferred',
    registers: [registry],
  });
  const inferenceSeconds = new Histogram({
    name: 'visioninapp_edge_inference_seconds',
    help: 'Inference latency per frame (pre-processing, model, decode and NMS)',
    buckets: [0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1],
    registers: [registry],
  });
  const inferenceErrors = new Counter({
    name: 'visioninapp_edge_inference_errors_total',
    help: 'Frames whose inference failed',
    registers: [registry],
  });
  const deploys = new Counter({
    name: 'visioninapp_edge_deploys_total',
    help: 'Deploy and rollback commands by outcome',
    labelNames: ['outcome'],
    registers: [registry],
  });
  new Gauge({
    name: 'visioninapp_edge_fps',
    help: 'Frames inferred per second over the last 30 s',
    registers: [registry],
    collect() {
      this.set(source.fps());
    },
  });
  new Gauge({
    name: 'visioninapp_edge_model_info',
    help: 'The model being served (value 1) with its version and execution provider',
    labelNames: ['version_id', 'name', 'version', 'provider'],
    registers: [registry],
    collect() {
      this.reset();
      const m = source.model();
      if (m)
        this.set(
          { version_id: m.versionId, name: m.name, version: String(m.version), provider: m.provider },
          1,
        );
    },
  });
  new Gauge({
    name: 'visioninapp_edge_feedback_samples',
    help: 'Feedback samples by outcome (low_confidence and disagreement sampled, capped by rate limit, uploaded, dropped)',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      this.reset();
      const f = source.feedback();
      if (f) for (const [k, v] of Object.entries(f)) this.set({ outcome: k }, v);
    },
  });
  new Gauge({
    name: 'visioninapp_edge_telemetry_buffered',
    help: 'Telemetry messages buffered on disk while the broker is unreachable',
    registers: [registry],
    collect() {
      this.set(source.telemetry().buffered);
    },
  });
  new Gauge({
    name: 'visioninapp_edge_telemetry_dropped',
    help: 'Telemetry messages dropped because the offline buffer was full',
    registers: [registry],
    collect() {
      this.set(source.telemetry().dropped);
    },
  });
  new Gauge({
    name: 'visioninapp_edge_frames_dropped',
    help: 'Frames the source dropped because inference was slower',
    registers: [registry],
    collect() {
      this.set(source.framesDropped());
    },
  });
  return { registry, frames, inferenceSeconds, inferenceErrors, deploys };
}
