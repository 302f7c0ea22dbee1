import type { CoreTables } from './tables/core.js';
import type { AccountLinkTables } from './tables/account-links.js';
import type { DatasetTables } from './tables/datasets.js';
import type { TrainingTables } from './tables/training.js';
import type { ModelTables } from './tables/models.js';
import type { FleetTables } from './tables/fleet.js';
import type { FeedbackTables } from './tables/feedback.js';
import type { GovernanceTables } from './tables/governance.js';
import type { AgentTables } from './tables/agent.js';
import type { ExecutionTables } from './tables/executions.js';

/**
 * Every table of the platform, for Kysely. Times are epoch milliseconds (BIGINT), JSON is TEXT,
 * booleans are 0/1 integers, so one schema serves SQLite and MySQL.
 */
export interface Database
  extends
    CoreTables,
    AccountLinkTables,
    DatasetTables,
    TrainingTables,
    ModelTables,
    FleetTables,
    FeedbackTables,
    GovernanceTables,
    AgentTables,
    ExecutionTables {}
