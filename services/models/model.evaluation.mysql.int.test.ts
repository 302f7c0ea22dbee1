import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTempMysqlDatabase, SERVICE_URLS, skipWithoutService } from '../../test/services.fixtures.js';
import { MysqlDb } from '../infra/db/mysql.js';
import { ModelEvaluationService } from './model.evaluation.js';
import { HELMET_AP, makeEvaluationFixture } from './models.fixtures.js';

// Needs MariaDB/MySQL: TEST_DATABASE_URL (default mysql://root@127.0.0.1:3306/test).
const skip = await skipWithoutService('MySQL', SERVICE_URLS.mysql, 'TEST_DATABASE_URL');

describe.skipIf(skip)(`${ModelEvaluationService.name} on MariaDB`, () => {
  let temp: Awaited<ReturnType<typeof createTempMysqlDatabase>>;
  let db: MysqlDb;
  let f: Awaited<ReturnType<typeof makeEvaluationFixture>>;

  beforeAll(async () => {
    temp = await createTempMysqlDatabase();
    db = new MysqlDb({ url: temp.url });
    f = await makeEvaluationFixture({ db });
  }, 90_000);

  afterAll(async () => {
    await f?.cleanup();
    await db?.close();
    await temp?.drop();
  });

  it('records evaluations as history per version and reads them back exactly, newest first', async () => {
    const v = await f.register({});
    const first = await f.sut.evaluate(f.ctx, { modelVersion: v.ref });
    const second = await f.sut.evaluate(f.ctx, { modelVersion: v.ref, split: 'train' });
    expect(first.metrics.mAP50).toBeCloseTo((HELMET_AP + 1) / 2, 10);
    const listed = await f.sut.list(f.ctx, v.id);
    expect(listed.map((e) => e.id)).toEqual([second.id, first.id]);
    expect(listed[1]).toEqual(first);
    expect(await f.sut.list(f.ctx, v.id, { limit: 1 })).toHaveLength(1);
  });
});
