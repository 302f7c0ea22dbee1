import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { z } from 'zod';
import { PlatformError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { loadDetector, type Detector, type LoadDetectorOptions } from '../vision/index.js';

/** Execution providers the edge runner knows, in the order a Jetson prefers them. */
export const EXECUTION_PROVIDERS = ['tensorrt', 'cuda', 'cpu'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

/** A comma-separated provider list such as `tensorrt,cuda,cpu`. */
export const providerListSchema = z
  .union([z.string(), z.array(z.string())])
  .transform((v) =>
    (Array.isArray(v) ? v : v.split(',')).map((p) => p.trim().toLowerCase()).filter((p) => p !== ''),
  )
  .pipe(
    z
      .array(
        z.enum(EXECUTION_PROVIDERS, {
          error: (iss) =>
            `unknown execution provider "${String(iss.input)}"; execution providers must be among ${EXECUTION_PROVIDERS.join(', ')}`,
        }),
      )
      .min(1, 'name at least one execution provider, e.g. cpu'),
  );

/** TensorRT engine cache settings for one model on this device. */
export interface TensorrtCache {
  /** Folder of the cached engines for this model × device × TensorRT version. */
  dir: string;
  fp16?: boolean;
}

/** What `loadWithFallback` ended on. */
export interface LoadedModel {
  detector: Detector;
  /** The provider that created the session (first of the chain that worked). */
  provider: ExecutionProvider;
  /** Providers that failed before, with onnxruntime's reason. */
  failures: Array<{ provider: ExecutionProvider; error: string }>;
}

/** onnxruntime's provider configs for the chain starting at `providers[0]` (later ones take the nodes it cannot run). */
export function providerChain(
  providers: readonly ExecutionProvider[],
  trt?: TensorrtCache,
  deviceId = 0,
): ort.InferenceSession.ExecutionProviderConfig[] {
  return providers.map((p): ort.InferenceSession.ExecutionProviderConfig => {
    if (p === 'tensorrt') {
      // The options beyond deviceId reach TensorRT in onnxruntime builds whose Node binding forwards
      // them; the ORT_TENSORRT_* variables set by withTensorrtEnv cover builds that read the environment.
      const cfg = {
        name: 'tensorrt',
        deviceId,
        ...(trt
          ? {
              trt_engine_cache_enable: true,
              trt_engine_cache_path: trt.dir,
              trt_fp16_enable: trt.fp16 ?? true,
            }
          : {}),
      };
      return cfg as ort.InferenceSession.ExecutionProviderConfig;
    }
    if (p === 'cuda') return { name: 'cuda', deviceId };
    return 'cpu';
  });
}

/** onnxruntime's error when a provider's shared library is not on this machine. */
const MISSING_PROVIDER = /Failed to load (shared )?library/i;

let envQueue: Promise<unknown> = Promise.resolve();

/** Runs `fn` with the TensorRT engine cache variables pointing at `trt.dir` (serialised: the environment is process-wide). */
async function withTensorrtEnv<T>(trt: TensorrtCache | undefined, fn: () => Promise<T>): Promise<T> {
  if (!trt) return fn();
  const run = envQueue.then(async () => {
    const keys = [
      'ORT_TENSORRT_ENGINE_CACHE_ENABLE',
      'ORT_TENSORRT_CACHE_PATH',
      'ORT_TENSORRT_ENGINE_CACHE_PATH',
      'ORT_TENSORRT_FP16_ENABLE',
    ] as const;
    const saved = keys.map((k) => process.env[k]);
    process.env.ORT_TENSORRT_ENGINE_CACHE_ENABLE = '1';
    process.env.ORT_TENSORRT_CACHE_PATH = trt.dir;
    process.env.ORT_TENSORRT_ENGINE_CACHE_PATH = trt.dir;
    process.env.ORT_TENSORRT_FP16_ENABLE = trt.fp16 === false ? '0' : '1';
    try {
      return await fn();
    } finally {
      keys.forEach((k, i) => {
        const v = saved[i];
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      });
    }
  });
  envQueue = run.catch(() => undefined);
  return run;
}

/**
 * Loads a detector on the first provider of `providers` that can create a session, falling back
 * to the next one when onnxruntime cannot create it (provider library missing, no GPU, engine
 * build failure). Errors that are about the model itself (layout, shape) are not retried.
 */
export async function loadWithFallback(
  model: string | Uint8Array,
  providers: readonly ExecutionProvider[],
  opts: Omit<LoadDetectorOptions, 'providers'> & {
    tensorrt?: TensorrtCache;
    log?: Logger;
    loader?: typeof loadDetector;
  } = {},
): Promise<LoadedModel> {
  const { tensorrt, log, loader = loadDetector, ...loadOpts } = opts;
  const failures: LoadedModel['failures'] = [];
  for (let i = 0; i < providers.length; i++) {
    const provider = providers[i]!;
    const chain = providerChain(providers.slice(i), provider === 'tensorrt' ? tensorrt : undefined);
    try {
      const detector = await withTensorrtEnv(provider === 'tensorrt' ? tensorrt : undefined, () =>
        // loadDetector hands the list to onnxruntime unchanged; its type only names the string form.
        loader(model, { ...loadOpts, providers: chain as LoadDetectorOptions['providers'] }),
      );
      if (failures.some((f) => !MISSING_PROVIDER.test(f.error)))
        log?.warn({ provider, failures }, `execution provider fallback: running on ${provider}`);
      else if (failures.length > 0)
        log?.debug({ provider, failures }, `execution providers not installed: running on ${provider}`);
      return { detector, provider, failures };
    } catch (err) {
      const message = (err as Error).message;
      // loadDetector reports session creation failures this way; anything else is the model's fault on every provider.
      if (!/onnxruntime cannot load the model/.test(message)) throw err;
      failures.push({ provider, error: message });
      // A provider whose library is not installed (a CPU-only machine) is expected, not a fault.
      if (MISSING_PROVIDER.test(message))
        log?.debug({ provider, error: message }, 'execution provider not installed; trying the next');
      else
        log?.warn(
          { provider, error: message },
          'execution provider failed to create a session; trying the next',
        );
    }
  }
  throw new PlatformError(
    'unavailable',
    `no execution provider could load the model (${failures.map((f) => `${f.provider}: ${f.error}`).join('; ')}); check the onnxruntime build on this device or add cpu to the provider list`,
    { failures },
  );
}

/** Best-effort TensorRT version from the libnvinfer shared library on this device, or `none`. */
export function detectTensorrtVersion(
  libDirs: string[] = [
    '/usr/lib/aarch64-linux-gnu',
    '/usr/lib/x86_64-linux-gnu',
    '/usr/local/lib',
    '/usr/lib',
  ],
): string {
  for (const dir of libDirs) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    const versions = names
      .map((n) => /^libnvinfer\.so\.(\d+\.\d+\.\d+)/.exec(n)?.[1])
      .filter((v): v is string => v !== undefined);
    if (versions.length > 0)
      return versions.sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).at(-1)!;
  }
  return 'none';
}

/** Hardware name: the device-tree model on a Jetson (e.g. `NVIDIA Jetson Orin Nano Developer Kit`), else CPU model and architecture. */
export function detectHardware(): string {
  try {
    const model = readFileSync('/proc/device-tree/model', 'utf8').replace(/\0/g, '').trim();
    if (model !== '') return model;
  } catch {
    // Not a device-tree board.
  }
  return `${os.cpus()[0]?.model?.trim() ?? 'unknown cpu'} (${os.arch()})`;
}

/** The engine cache folder of one model on one device and TensorRT version: `<root>/<sha256[:16]>-<hardware>-trt<version>`. */
export function tensorrtCacheDir(
  root: string,
  modelSha256: string,
  hardware: string,
  tensorrtVersion: string,
): string {
  const slug = (s: string) =>
    s
      .toLowerCase()
      .replace(/[^a-z0-9.]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 48) || 'unknown';
  return path.join(root, `${modelSha256.slice(0, 16)}-${slug(hardware)}-trt${slug(tensorrtVersion)}`);
}
