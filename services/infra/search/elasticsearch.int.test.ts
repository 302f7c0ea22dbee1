import { describe } from 'vitest';
import { uniqueSuffix } from '../../../test/services.fixtures.js';
import { ElasticsearchIndex } from './elasticsearch.js';
import { searchContract } from './search.contract.js';

// Needs a real Elasticsearch 8/9: set ELASTICSEARCH_URL (e.g. http://127.0.0.1:9200). CI has no Elasticsearch,
// so this file skips whenever the variable is unset, even with REQUIRE_SERVICES=1; elasticsearch.test.ts
// covers the adapter against @elastic/elasticsearch-mock in every run.
const url = process.env.ELASTICSEARCH_URL;
if (url === undefined)
  console.warn(
    '[skip] Elasticsearch tests skipped: ELASTICSEARCH_URL is not set (set it to run the search contract against a real server)',
  );

describe.skipIf(url === undefined)('ElasticsearchIndex against a real server', () => {
  searchContract('elasticsearch', async () => {
    const index = new ElasticsearchIndex({
      url: url!,
      indexPrefix: `vtest-${uniqueSuffix()}`,
      refresh: 'wait_for',
    });
    return { index, cleanup: () => index.clear() };
  });
});
