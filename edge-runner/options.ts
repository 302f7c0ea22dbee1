import type { Broker } from '../services/infra/broker/index.js';
import type { Logger } from '../core/log.js';
import type { FeedbackOptions } from './feedback.js';
import type { FrameSource } from './sources/index.js';

/** Options of `EdgeRunner`. */
export interface EdgeRunnerOptions {
  deviceId: string;
  name?: string;
  tags: string[];
  broker: Broker;
  /** Folder for the state file, models, TensorRT engines, telemetry buffer and pending feedback. */
  dataDir: string;
  source: FrameSource;
  /** Execution providers in order of preference (default `['cpu']`), e.g. `['tensorrt', 'cuda', 'cpu']`. */
  providers?: string[];
  /** Top confidence in [low, high) marks a frame uncertain (default [0.25, 0.5]). */
  uncertainBand?: [number, number];
  /** Enables feedback sampling and upload. */
  feedback?: FeedbackOptions;
  /** Local HTTP API port (0 = any free port); no API when undefined. */
  httpPort?: number;
  /** Address the API binds (default 127.0.0.1; 0.0.0.0 exposes it to the network, still behind the key). */
  httpHost?: string;
  /**
   * Key every device API route but `GET /healthz` requires (`X-Device-Key` or `Authorization: Bearer`), at
   * least 16 characters; see `deviceApiKeyFromToken`. When absent, a random key is created once and kept
   * in `<dataDir>/device-api-key` (owner-only).
   */
  apiKey?: string;
  /** Largest image (width x height) the device decodes from `POST /infer` (default `DEFAULT_MAX_IMAGE_PIXELS`). */
  maxImagePixels?: number;
  /** Largest request body of the device API in bytes (default 25 MiB). */
  maxBodyBytes?: number;
  log: Logger;
  /** Heartbeat interval (default 5 s). */
  heartbeatMs?: number;
  /** Detection confidence threshold (default 0.25, lowered to the uncertain band's floor). */
  conf?: number;
  /** onnxruntime intra-op threads (0 = onnxruntime's default). */
  threads?: number;
  /** Hardware name in heartbeats (default: device-tree model or CPU model). */
  hardware?: string;
  /** TensorRT version used in the engine cache key (default: from libnvinfer on disk). */
  tensorrtVersion?: string;
  thermalRoots?: string[];
  /** Bounds of the offline telemetry buffer. */
  outbox?: { maxRecords?: number; maxBytes?: number; retryMs?: number };
  /** Frames the self-test runs a new model on (default 3, from the most recent frames). */
  selfTestFrames?: number;
  downloadTimeoutMs?: number;
  /** Publish a heartbeat whenever the deploy state changes (default true). */
  heartbeatOnChange?: boolean;
}
