import { MemoryCache } from './memory.js';
import { readCacheContract } from './read-cache.contract.js';

readCacheContract('memory', async () => ({ cache: new MemoryCache(), cleanup: async () => undefined }));
