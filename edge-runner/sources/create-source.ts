import path from 'node:path';
import { PlatformError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { FfmpegSource } from './ffmpeg-source.js';
import { FolderSource } from './folder-source.js';
import type { FrameSource } from './frame-source.js';
import { HttpPushSource } from './http-push-source.js';

/** Builds a frame source from its spec: `folder:<dir>` (or a plain path), `http`, or `ffmpeg:<input>`. */
export function createFrameSource(
  spec: string,
  options: { maxFps?: number; log?: Logger; maxPixels?: number } = {},
): FrameSource {
  const { maxPixels, ...opts } = options;
  const s = spec.trim();
  if (s === 'http' || s === 'http:') return new HttpPushSource(maxPixels === undefined ? {} : { maxPixels });
  if (s.startsWith('ffmpeg:')) return new FfmpegSource({ input: s.slice('ffmpeg:'.length), ...opts });
  const dir = s.startsWith('folder:') ? s.slice('folder:'.length) : s;
  if (dir === '' || /^[a-z][a-z0-9+.-]*:\/\//i.test(dir)) {
    throw new PlatformError(
      'invalid_input',
      `unknown frame source "${spec}"; use folder:<dir>, http, or ffmpeg:<file|rtsp://…|/dev/video0>`,
    );
  }
  return new FolderSource({
    dir: path.resolve(dir),
    ...(opts.maxFps === undefined ? {} : { maxFps: opts.maxFps }),
  });
}
