import { describe } from 'vitest';
import { createTempMysqlDatabase, SERVICE_URLS, skipWithoutService } from '../../test/services.fixtures.js';
import { MysqlDb } from '../infra/db/mysql.js';
import { chatLinkServiceSuite } from './chat-link.service.contract.js';

// Needs MariaDB/MySQL: TEST_DATABASE_URL (default mysql://root@127.0.0.1:3306/test).
const skip = await skipWithoutService('MySQL', SERVICE_URLS.mysql, 'TEST_DATABASE_URL');

describe.skipIf(skip)('ChatLinkService on MariaDB', () => {
  chatLinkServiceSuite('mysql', async () => {
    const temp = await createTempMysqlDatabase();
    return { db: new MysqlDb({ url: temp.url }), cleanup: temp.drop };
  });
});
