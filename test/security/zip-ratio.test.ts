import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import yazl from 'yazl';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_ZIP_LIMITS, extractZipSafely } from '../../services/datasets/index.js';

function zipOf(files: Array<[string, Buffer]>): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const [name, data] of files) zip.addBuffer(data, name, { compress: true });
  zip.end();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    zip.outputStream.on('error', reject);
  });
}

describe('zip compression-ratio limits apply to every entry and to the whole archive', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'via-zip-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a few-KB zip of 1 MiB entries that inflates ~1000:1 (each entry at the old 1 MiB threshold), writing nothing', async () => {
    const zip = await zipOf(
      [0, 1, 2].map((i) => [`labels/${i}.txt`, Buffer.alloc(1024 ** 2)] as [string, Buffer]),
    );
    expect(zip.length).toBeLessThan(8 * 1024);
    await expect(extractZipSafely(zip, dir, DEFAULT_ZIP_LIMITS)).rejects.toMatchObject({
      code: 'invalid_input',
      message: expect.stringMatching(/compression ratio|decompression bomb/),
    });
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses an archive of many small highly compressible entries by its overall ratio', async () => {
    const zip = await zipOf(
      Array.from(
        { length: 400 },
        (_, i) => [`labels/${i}.txt`, Buffer.alloc(4000, 0x30)] as [string, Buffer],
      ),
    );
    await expect(extractZipSafely(zip, dir, DEFAULT_ZIP_LIMITS)).rejects.toMatchObject({
      code: 'invalid_input',
      message: expect.stringMatching(/in all .*decompression bomb/),
    });
    expect(await readdir(dir)).toEqual([]);
  });

  it('still extracts an ordinary archive (incompressible images, short labels)', async () => {
    const zip = await zipOf([
      ['images/a.jpg', randomBytes(50_000)],
      ['labels/a.txt', Buffer.from('0 0.5 0.5 0.2 0.3\n1 0.1 0.2 0.05 0.05\n')],
    ]);
    expect((await extractZipSafely(zip, dir, DEFAULT_ZIP_LIMITS)).sort()).toEqual([
      'images/a.jpg',
      'labels/a.txt',
    ]);
  });
});
