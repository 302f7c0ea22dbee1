import { describe } from 'vitest';
import {
  createTempMysqlDatabase,
  SERVICE_URLS,
  skipWithoutService,
} from '../../../test/services.fixtures.js';
import { dbContract } from './db.contract.js';
import { MysqlDb } from './mysql.js';

// Needs MariaDB/MySQL: TEST_DATABASE_URL (default mysql://root@127.0.0.1:3306/test).
const skip = await skipWithoutService('MySQL', SERVICE_URLS.mysql, 'TEST_DATABASE_URL');

describe.skipIf(skip)('MysqlDb', () => {
  dbContract('mysql', async () => {
    const temp = await createTempMysqlDatabase();
    return { db: new MysqlDb({ url: temp.url }), cleanup: temp.drop };
  });
});
