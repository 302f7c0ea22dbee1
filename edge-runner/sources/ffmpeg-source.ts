import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { PlatformError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { FramePacer, type Frame, type FrameSource } from './frame-source.js';

/** Options of `FfmpegSource`. */
export interface FfmpegSourceOptions {
  /** Anything ffmpeg reads: a video file, an RTSP/HTTP URL, `/dev/video0`. */
  input: string;
  /** Frames per second cap, applied with ffmpeg's `fps` filter (0 = the input's rate). */
  maxFps?: number;
  /** Replay a video file from the start when it ends (default true; live inputs are reconnected instead). */
  loop?: boolean;
  /** Scale frames to this size before they reach Node. */
  size?: { width: number; height: number };
  /** ffmpeg binary (default `ffmpeg` on PATH). */
  ffmpegPath?: string;
  /** Wait before restarting a live input that failed (default 2 s). */
  restartDelayMs?: number;
  log?: Logger;
}

const DIMENSIONS = /Output #0[\s\S]*?Stream #\d+:\d+[^\n]*?Video: rawvideo[^\n]*?,\s*(\d{1,5})x(\d{1,5})/;

/**
 * Raw rgb24 frames from an ffmpeg child process. Keeps only the latest frame when the consumer
 * is slower (counted in `dropped`), so a live camera never lags behind; video files are read at
 * their native rate (`-re`).
 */
export class FfmpegSource implements FrameSource {
  readonly kind = 'ffmpeg' as const;
  readonly description: string;
  private child: ChildProcessByStdio<null, Readable, Readable> | undefined;
  private latest: Frame | undefined;
  private waiter: ((f: Frame | undefined) => void) | undefined;
  private ended = false;
  private closed = false;
  private seq = 0;
  private droppedFrames = 0;
  private lastError: string | undefined;
  private readonly isFile: boolean;
  private readonly pacer: FramePacer;
  private restartTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: FfmpegSourceOptions) {
    if (opts.input.trim() === '')
      throw new PlatformError(
        'invalid_input',
        'ffmpeg source needs an input, e.g. ffmpeg:/data/line3.mp4 or ffmpeg:rtsp://camera/stream',
      );
    this.description = `ffmpeg ${redactUrl(opts.input)}`;
    this.isFile = existsSync(opts.input) && statSync(opts.input).isFile();
    // The fps filter does the capping inside ffmpeg; the pacer only smooths bursts.
    this.pacer = new FramePacer(opts.maxFps);
  }

  get dropped(): number {
    return this.droppedFrames;
  }

  /** The last ffmpeg error line, if the process failed. */
  get error(): string | undefined {
    return this.lastError;
  }

  async next(): Promise<Frame | undefined> {
    if (this.closed) return undefined;
    if (!this.child && !this.ended && this.restartTimer === undefined) this.spawn();
    await this.pacer.wait();
    if (this.latest) {
      const f = this.latest;
      this.latest = undefined;
      return f;
    }
    if (this.ended || this.closed) return undefined;
    return new Promise((resolve) => (this.waiter = resolve));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.pacer.cancel();
    clearTimeout(this.restartTimer);
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null) {
      const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
      child.kill('SIGTERM');
      const force = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(force);
    }
    this.finish();
  }

  private args(): string[] {
    const a = ['-hide_banner', '-nostdin', '-loglevel', 'info'];
    if (this.isFile) {
      a.push('-re');
      if (this.opts.loop !== false) a.push('-stream_loop', '-1');
    } else if (/^rtsps?:\/\//i.test(this.opts.input)) a.push('-rtsp_transport', 'tcp');
    a.push('-i', this.opts.input, '-an', '-sn');
    const filters: string[] = [];
    if (this.opts.maxFps !== undefined && this.opts.maxFps > 0) filters.push(`fps=${this.opts.maxFps}`);
    if (this.opts.size) filters.push(`scale=${this.opts.size.width}:${this.opts.size.height}`);
    if (filters.length > 0) a.push('-vf', filters.join(','));
    a.push('-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1');
    return a;
  }

  private spawn(): void {
    const child = spawn(this.opts.ffmpegPath ?? 'ffmpeg', this.args(), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let stderr = '';
    let width = 0;
    let height = 0;
    let frameBytes = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;

    const emit = (data: Buffer): void => {
      const frame: Frame = {
        image: { data, width, height, channels: 3 },
        capturedAt: Date.now(),
        seq: this.seq++,
      };
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w(frame);
        return;
      }
      if (this.latest) this.droppedFrames++;
      this.latest = frame;
    };
    const drain = (): void => {
      if (frameBytes === 0) return;
      while (pendingBytes >= frameBytes) {
        const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
        emit(Buffer.from(all.subarray(0, frameBytes)));
        const rest = all.subarray(frameBytes);
        pending = rest.length > 0 ? [rest] : [];
        pendingBytes = rest.length;
      }
    };

    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      if (stderr.length < 64 * 1024) stderr += chunk;
      if (frameBytes === 0) {
        const m = DIMENSIONS.exec(stderr);
        if (m) {
          width = Number(m[1]);
          height = Number(m[2]);
          frameBytes = width * height * 3;
          drain();
        }
      }
    });
    child.stdout.on('data', (chunk: Buffer) => {
      pending.push(chunk);
      pendingBytes += chunk.length;
      drain();
    });
    child.on('error', (err) => {
      this.lastError =
        (err as NodeJS.ErrnoException).code === 'ENOENT'
          ? 'ffmpeg not found on PATH; install it (apt-get install ffmpeg)'
          : err.message;
      this.opts.log?.error({ err: this.lastError }, 'ffmpeg source failed');
    });
    child.on('close', (code) => {
      if (this.child === child) this.child = undefined;
      if (this.closed) return;
      if (code !== 0) {
        const lines = stderr.trim().split('\n');
        this.lastError ??= `ffmpeg exited with code ${code}: ${lines[lines.length - 1] ?? ''}`;
        this.opts.log?.warn(
          { input: redactUrl(this.opts.input), code, error: this.lastError },
          'ffmpeg source stopped',
        );
      }
      const live = !this.isFile;
      if (live && !this.closed) {
        // Cameras and streams drop; try again after a pause.
        this.restartTimer = setTimeout(() => {
          this.restartTimer = undefined;
          this.lastError = undefined;
          if (!this.closed) this.spawn();
        }, this.opts.restartDelayMs ?? 2000);
        this.restartTimer.unref();
        return;
      }
      this.ended = true;
      if (!this.latest) this.finish();
    });
  }

  private finish(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.(undefined);
  }
}

/** Hides credentials in `rtsp://user:pass@host` style inputs. */
function redactUrl(input: string): string {
  return input.replace(/\/\/[^/@\s]+@/, '//***@');
}
