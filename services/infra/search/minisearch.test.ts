import { searchContract } from './search.contract.js';
import { MiniSearchIndex } from './minisearch.js';

searchContract('minisearch', async () => ({ index: new MiniSearchIndex() }));
