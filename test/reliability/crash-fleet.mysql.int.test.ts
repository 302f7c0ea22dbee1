import { fleetCrashSuite } from './crash-fleet-scenario.js';

// (f) an edge-runner and (d) serve killed mid-rollout, the platform on MariaDB/MySQL (a temporary database on TEST_DATABASE_URL).
await fleetCrashSuite('mysql');
