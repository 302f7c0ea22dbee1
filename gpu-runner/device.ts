import os from 'node:os';
import { runCommand } from './backends/process.js';

/** The compute device a runner advertises. */
export interface RunnerDevice {
  kind: 'cpu' | 'cuda';
  name: string;
  memoryMb?: number;
}

/** First GPU from `nvidia-smi` when present, else the CPU model and system memory. */
export async function detectDevice(nvidiaSmi = 'nvidia-smi'): Promise<RunnerDevice> {
  const r = await runCommand(
    nvidiaSmi,
    ['--query-gpu=name,memory.total', '--format=csv,noheader,nounits'],
    5000,
  );
  const first = r.code === 0 ? r.stdout.split('\n').find((l) => l.trim() !== '') : undefined;
  if (first !== undefined) {
    const [name, mem] = first.split(',').map((s) => s.trim());
    const memoryMb = Number(mem);
    return { kind: 'cuda', name: name || 'NVIDIA GPU', ...(Number.isFinite(memoryMb) ? { memoryMb } : {}) };
  }
  const cpus = os.cpus();
  return {
    kind: 'cpu',
    name: `${cpus[0]?.model.trim() ?? 'CPU'} (${cpus.length} cores)`,
    memoryMb: Math.round(os.totalmem() / 2 ** 20),
  };
}
