export { createFrameSource } from './create-source.js';
export { FfmpegSource } from './ffmpeg-source.js';
export type { FfmpegSourceOptions } from './ffmpeg-source.js';
export { FolderSource } from './folder-source.js';
export type { FolderSourceOptions } from './folder-source.js';
export { FramePacer } from './frame-source.js';
export type { Frame, FrameSource } from './frame-source.js';
export { HttpPushSource } from './http-push-source.js';
export type { HttpPushSourceOptions } from './http-push-source.js';
