import { createHmac, timingSafeEqual } from 'node:crypto';

/** How far a Slack request timestamp may be from now (Slack's documented replay window). */
export const SLACK_REPLAY_WINDOW_S = 5 * 60;

/** Why a Slack request was refused, or undefined when it verifies. */
export function slackSignatureProblem(input: {
  secret: string;
  timestamp: string | undefined;
  signature: string | undefined;
  rawBody: Buffer | string | undefined;
  nowMs: number;
}): string | undefined {
  const { secret, timestamp, signature, rawBody } = input;
  if (timestamp === undefined || signature === undefined)
    return 'missing X-Slack-Request-Timestamp or X-Slack-Signature header';
  if (rawBody === undefined) return 'missing request body';
  if (!/^\d{1,12}$/.test(timestamp)) return 'malformed X-Slack-Request-Timestamp';
  if (Math.abs(input.nowMs / 1000 - Number(timestamp)) > SLACK_REPLAY_WINDOW_S)
    return 'request timestamp is outside the 5-minute window (replayed or clock skew)';
  const expected = `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:`).update(rawBody).digest('hex')}`;
  const a = Buffer.from(expected);
  const b = Buffer.from(signature);
  if (a.length !== b.length || !timingSafeEqual(a, b)) return 'signature does not match';
  return undefined;
}

/** Signs a body as Slack does (for tests and local tools). */
export function slackSignature(secret: string, timestamp: string, rawBody: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${rawBody}`).digest('hex')}`;
}

/** Constant-time comparison of two tokens (Mattermost command tokens). */
export function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
