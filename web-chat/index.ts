export { apiRouter } from './api.js';
export type { ApiDeps } from './api.js';
export { createApp } from './app.js';
export type { WebLocals, WebOptions } from './app.js';
export {
  API_SCOPES,
  Authenticator,
  callContext,
  checkCsrf,
  CSRF_COOKIE,
  CSRF_HEADER,
  PROJECT_HEADER,
  requireRole,
  SESSION_COOKIE,
} from './auth.js';
export type { AuthDeps, RequestAuth } from './auth.js';
export { errorHandler, httpStatusOf, sendError, toPlatformError } from './http-errors.js';
export { openApiDocument } from './openapi.js';
export { CacheRateLimitStore, DEFAULT_RATE_LIMITS, rateLimiter } from './rate-limit.js';
export type { RateLimits } from './rate-limit.js';
export { ERROR_SCHEMA, featuresOf, PUBLIC_PATHS, route, ROUTES } from './routes/index.js';
export type { RouteAccess, RouteDef, RouteInput } from './routes/index.js';
export {
  attachSockets,
  roomOf,
  roomsOfEvent,
  SERVER_EVENTS,
  SOCKET_EVENT_LIMIT,
  SOCKET_EVENTS,
} from './sockets.js';
export type { SocketDeps, SocketEventDef, SocketServer } from './sockets.js';
export { toolContext } from './web-services.js';
export type { WebServices, WebTools } from './web-services.js';
