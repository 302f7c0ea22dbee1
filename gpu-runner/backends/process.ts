import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createInterface } from 'node:readline';

/** How a child process ended. */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when `stop()` was called before it ended. */
  stopped: boolean;
  /** The last stderr lines, for error messages. */
  stderrTail: string[];
  /** Set when the executable could not be started at all. */
  spawnError?: Error;
}

/** A spawned child with line-wise output and a stop that escalates from SIGTERM to SIGKILL. */
export interface LineProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<ChildExit>;
  stop(graceMs?: number): void;
}

/** Spawns `command args`, calling `onStdout`/`onStderr` for each line; never throws. */
export function spawnLines(
  command: string,
  args: string[],
  opts: SpawnOptions & { onStdout(line: string): void; onStderr(line: string): void },
): LineProcess {
  const { onStdout, onStderr, ...spawnOpts } = opts;
  // a process group of its own lets stop() reach grandchildren (dataloader workers, shells)
  const child = spawn(command, args, { ...spawnOpts, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const stderrTail: string[] = [];
  let stopped = false;
  let killTimer: NodeJS.Timeout | undefined;
  const closed: Promise<void>[] = [];
  if (child.stdout) {
    const rl = createInterface({ input: child.stdout });
    rl.on('line', onStdout);
    closed.push(new Promise((r) => rl.once('close', () => r())));
  }
  if (child.stderr) {
    const rl = createInterface({ input: child.stderr });
    rl.on('line', (line) => {
      stderrTail.push(line);
      if (stderrTail.length > 20) stderrTail.shift();
      onStderr(line);
    });
    closed.push(new Promise((r) => rl.once('close', () => r())));
  }
  const exited = new Promise<ChildExit>((resolve) => {
    child.once('error', (err) => {
      if (killTimer) clearTimeout(killTimer);
      resolve({ code: null, signal: null, stopped, stderrTail, spawnError: err });
    });
    child.once('exit', (code, signal) => {
      if (killTimer) clearTimeout(killTimer);
      void Promise.race([Promise.all(closed), new Promise((r) => setTimeout(r, 1000))]).then(() =>
        resolve({ code, signal, stopped, stderrTail }),
      );
    });
  });
  const signalGroup = (sig: NodeJS.Signals) => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, sig);
    } catch {
      child.kill(sig);
    }
  };
  return {
    child,
    exited,
    stop(graceMs = 3000) {
      if (stopped) return;
      stopped = true;
      signalGroup('SIGTERM');
      killTimer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
      killTimer.unref();
    },
  };
}

/** Runs a command to completion and returns its exit code and output; for short probes. */
export async function runCommand(
  command: string,
  args: string[],
  timeoutMs = 20_000,
): Promise<{ code: number | null; stdout: string; stderr: string; error?: Error }> {
  const out: string[] = [];
  const err: string[] = [];
  const p = spawnLines(command, args, { onStdout: (l) => out.push(l), onStderr: (l) => err.push(l) });
  const timer = setTimeout(() => p.stop(500), timeoutMs);
  const exit = await p.exited;
  clearTimeout(timer);
  return {
    code: exit.code,
    stdout: out.join('\n'),
    stderr: err.join('\n'),
    ...(exit.spawnError ? { error: exit.spawnError } : {}),
  };
}
