import type { RouteDef } from './route.js';
import { authRoutes } from './auth.routes.js';
import { datasetsRoutes } from './datasets.routes.js';
import { uploadsRoutes } from './uploads.routes.js';
import { modelsRoutes } from './models.routes.js';
import { trainingRoutes } from './training.routes.js';
import { fleetRoutes } from './fleet.routes.js';
import { feedbackRoutes } from './feedback.routes.js';
import { approvalsRoutes } from './approvals.routes.js';
import { auditRoutes } from './audit.routes.js';
import { toolsRoutes } from './tools.routes.js';
import { chatRoutes } from './chat.routes.js';
import { opsRoutes } from './ops.routes.js';

export * from './route.js';

/** The single route table of the REST API: every route with its access role (the security matrix test is generated from it). */
export const ROUTES: RouteDef[] = [
  ...authRoutes,
  ...datasetsRoutes,
  ...uploadsRoutes,
  ...modelsRoutes,
  ...trainingRoutes,
  ...fleetRoutes,
  ...feedbackRoutes,
  ...approvalsRoutes,
  ...auditRoutes,
  ...toolsRoutes,
  ...chatRoutes,
  ...opsRoutes,
];
