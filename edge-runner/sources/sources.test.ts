import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFrameSource } from './create-source.js';
import { FfmpegSource } from './ffmpeg-source.js';
import { FolderSource } from './folder-source.js';
import { HttpPushSource } from './http-push-source.js';
import { ImageListSource } from './image-list-source.js';

const run = promisify(execFile);
let dir: string;

const png = (w: number, h: number, r: number) =>
  sharp({ create: { width: w, height: h, channels: 3, background: { r, g: 10, b: 10 } } })
    .png()
    .toBuffer();

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edge-sources-'));
  await mkdir(path.join(dir, 'imgs', 'nested'), { recursive: true });
  await writeFile(path.join(dir, 'imgs', 'a.png'), await png(40, 30, 200));
  await writeFile(
    path.join(dir, 'imgs', 'b.jpg'),
    await sharp(await png(20, 10, 50))
      .jpeg()
      .toBuffer(),
  );
  await writeFile(
    path.join(dir, 'imgs', 'nested', 'c.webp'),
    await sharp(await png(16, 16, 90))
      .webp()
      .toBuffer(),
  );
  await writeFile(path.join(dir, 'imgs', 'notes.txt'), 'not an image');
  await mkdir(path.join(dir, 'empty'));
  await run('ffmpeg', [
    '-hide_banner',
    '-loglevel',
    'error',
    '-f',
    'lavfi',
    '-i',
    'testsrc=size=160x120:rate=10:duration=2',
    '-pix_fmt',
    'yuv420p',
    path.join(dir, 'clip.mp4'),
  ]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe(FolderSource.name, () => {
  it('decodes every image of the folder tree to RGB and loops', async () => {
    const src = new FolderSource({ dir: path.join(dir, 'imgs') });
    const frames = [];
    for (let i = 0; i < 4; i++) frames.push((await src.next())!);
    await src.close();
    expect(frames.map((f) => f.label)).toEqual(['a.png', 'b.jpg', path.join('nested', 'c.webp'), 'a.png']);
    expect(frames.map((f) => [f.image.width, f.image.height, f.image.channels])).toEqual([
      [40, 30, 3],
      [20, 10, 3],
      [16, 16, 3],
      [40, 30, 3],
    ]);
    expect(frames[0]!.image.data.length).toBe(40 * 30 * 3);
    expect(frames[0]!.image.data[0]).toBeGreaterThan(190);
    expect(frames.map((f) => f.seq)).toEqual([0, 1, 2, 3]);
    expect(await src.next()).toBeUndefined();
  });

  it('caps the frame rate and stops at the end without loop', async () => {
    const src = new FolderSource({ dir: path.join(dir, 'imgs'), maxFps: 20, loop: false });
    const t0 = performance.now();
    let n = 0;
    while (await src.next()) n++;
    expect(n).toBe(3);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(90);
  });

  it('explains an empty or missing folder', async () => {
    await expect(new FolderSource({ dir: path.join(dir, 'empty') }).next()).rejects.toThrow(
      /no images .* in frame folder/,
    );
    await expect(new FolderSource({ dir: path.join(dir, 'missing') }).next()).rejects.toThrow(
      /cannot read frame folder .*ENOENT/,
    );
  });
});

describe(FfmpegSource.name, () => {
  it('reads raw rgb24 frames of a testsrc video through an ffmpeg child process', async () => {
    const src = new FfmpegSource({ input: path.join(dir, 'clip.mp4'), maxFps: 10, loop: false });
    const frames = [];
    for (;;) {
      const f = await src.next();
      if (!f) break;
      frames.push(f);
    }
    expect(frames.length + src.dropped).toBeGreaterThanOrEqual(15);
    expect(frames.length).toBeGreaterThanOrEqual(5);
    for (const f of frames) {
      expect([f.image.width, f.image.height, f.image.channels]).toEqual([160, 120, 3]);
      expect(f.image.data.length).toBe(160 * 120 * 3);
    }
    // testsrc has coloured bars: the frame is not a flat colour.
    const d = frames[0]!.image.data;
    expect(new Set(Array.from(d.subarray(0, 160 * 3))).size).toBeGreaterThan(5);
  });

  it('scales frames and loops a file until closed', async () => {
    const src = createFrameSource(`ffmpeg:${path.join(dir, 'clip.mp4')}`, { maxFps: 25 });
    expect(src).toBeInstanceOf(FfmpegSource);
    const f = await src.next();
    expect(f!.image.width).toBe(160);
    await src.close();
    expect(await src.next()).toBeUndefined();
    const scaled = new FfmpegSource({ input: path.join(dir, 'clip.mp4'), size: { width: 64, height: 48 } });
    const g = await scaled.next();
    await scaled.close();
    expect([g!.image.width, g!.image.height, g!.image.data.length]).toEqual([64, 48, 64 * 48 * 3]);
  });

  it('ends with the ffmpeg error for an unreadable file', async () => {
    const bad = path.join(dir, 'bad.mp4');
    await writeFile(bad, 'not a video');
    const src = new FfmpegSource({ input: bad, loop: false });
    expect(await src.next()).toBeUndefined();
    expect(src.error).toMatch(/ffmpeg exited with code/);
  });
});

describe(HttpPushSource.name, () => {
  it('queues pushed images and drops the oldest beyond the queue size', async () => {
    const src = new HttpPushSource({ queueSize: 1 });
    const waiting = src.next();
    await src.push(await png(8, 8, 10), 'first');
    expect((await waiting)!.label).toBe('first');
    await src.push(await png(8, 8, 10), 'second');
    await src.push(await png(9, 9, 10), 'third');
    expect(src.dropped).toBe(1);
    const f = await src.next();
    expect([f!.label, f!.image.width]).toEqual(['third', 9]);
    await expect(src.push(Buffer.from('nope'))).rejects.toThrow(/could not decode the image/);
    await src.close();
    expect(await src.next()).toBeUndefined();
  });

  it('rejects unknown source specs', () => {
    expect(() => createFrameSource('s3://bucket/x')).toThrow(/unknown frame source/);
    expect(createFrameSource('http')).toBeInstanceOf(HttpPushSource);
    expect(createFrameSource(`folder:${dir}`)).toBeInstanceOf(FolderSource);
  });
});

describe(ImageListSource.name, () => {
  it('decodes the loaded images once and loops from an offset', async () => {
    let loads = 0;
    const src = new ImageListSource({
      images: async () => {
        loads++;
        return [
          { name: 'x', bytes: await png(10, 10, 1) },
          { name: 'y', bytes: await png(12, 10, 1) },
          { name: 'z', bytes: await png(14, 10, 1) },
        ];
      },
      offset: 2,
    });
    const names = [];
    for (let i = 0; i < 5; i++) names.push((await src.next())!.label);
    expect(names).toEqual(['z', 'x', 'y', 'z', 'x']);
    expect(loads).toBe(1);
    await src.close();
    await expect(new ImageListSource({ images: async () => [] }).next()).rejects.toThrow(/has no images/);
  });
});
