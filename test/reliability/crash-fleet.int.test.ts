import { fleetCrashSuite } from './crash-fleet-scenario.js';

// (f) an edge-runner and (d) serve killed mid-rollout, the platform on SQLite in DATA_DIR.
await fleetCrashSuite('sqlite');
