import { trainingCrashSuite } from './crash-training-scenario.js';

// (c) serve and (e) gpu-runner killed mid-training, the platform on MariaDB/MySQL (a temporary database on TEST_DATABASE_URL).
await trainingCrashSuite('mysql');
