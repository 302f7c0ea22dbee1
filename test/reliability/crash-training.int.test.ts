import { trainingCrashSuite } from './crash-training-scenario.js';

// (c) serve and (e) gpu-runner killed mid-training, the platform on SQLite in DATA_DIR.
await trainingCrashSuite('sqlite');
