export { approvalBlocks, escapeMrkdwn, parseUserMap, VisionBot } from './bot.js';
export type { BotReply, ChatUser } from './bot.js';
export { slackRouter } from './router.js';
export type { SlackOptions } from './router.js';
export { sameToken, SLACK_REPLAY_WINDOW_S, slackSignature, slackSignatureProblem } from './signature.js';
