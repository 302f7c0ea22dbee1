/** Amounts people name beside a request: how many log lines, over which period, how many images. */

const UNIT_HOURS: Array<[RegExp, number]> = [
  [/^(?:hours?|hrs?|h|시간)$/i, 1],
  [/^(?:days?|d|일)$/i, 24],
  [/^(?:weeks?|wks?|주|주일)$/i, 24 * 7],
  [/^(?:months?|달|개월)$/i, 24 * 30],
];

/**
 * A period back from now, in hours: "the last 48 hours", "past 30 days", "over two weeks" (numbers
 * in words are digits by now), "최근 2주", "지난 3일", "어제" (24), "오늘" (24), "this week" (168).
 */
export function findPeriodHours(text: string): number | undefined {
  const m =
    /\b(?:last|past|previous|recent|over|within|for|in)\s+(?:the\s+)?(?:last\s+|past\s+)?(\d{1,4})\s*(hours?|hrs?|h|days?|d|weeks?|wks?|months?)\b/i.exec(
      text,
    ) ?? /(?:최근|지난|요)?\s*(\d{1,4})\s*(시간|일|주일|주|개월|달)(?:\s*(?:간|동안|치))?/.exec(text);
  if (m !== null) {
    const unit = UNIT_HOURS.find(([re]) => re.test(m[2]!));
    if (unit !== undefined) return Number(m[1]) * unit[1];
  }
  if (/\b(?:last|past)\s+(hour|day|week|month)\b/i.test(text)) {
    const word = /\b(?:last|past)\s+(hour|day|week|month)\b/i.exec(text)![1]!;
    return UNIT_HOURS.find(([re]) => re.test(word))![1];
  }
  if (/\byesterday\b|\btoday\b|어제|오늘/i.test(text)) return 24;
  if (/\bthis week\b|이번\s*주/i.test(text)) return 24 * 7;
  return undefined;
}

/** Log lines asked for: "last 200 lines", "200 log lines", "마지막 100줄". */
export function findLines(text: string): number | undefined {
  const m =
    /(\d{1,3})\s*(?:log\s+)?lines?\b/i.exec(text) ??
    /\blines?\s*(?:=|:)?\s*(\d{1,3})\b/i.exec(text) ??
    /(\d{1,3})\s*(?:줄|라인)/.exec(text);
  const n = m ? Number(m[1]) : undefined;
  return n !== undefined && n >= 1 && n <= 500 ? n : undefined;
}

/** An image cap for an evaluation: "max 100 images", "on at most 200 images", "이미지 100장만". */
export function findMaxImages(text: string): number | undefined {
  const m =
    /\b(?:max(?:imum)?|at most|up to|only|first|limit(?:ed)? to)\s+(\d{1,5})\s*(?:images?|pictures?|frames?|samples?)?/i.exec(
      text,
    ) ??
    /(\d{1,5})\s*(?:images?|pictures?)\s+(?:max|at most|only)\b/i.exec(text) ??
    /(?:이미지|사진)?\s*(\d{1,5})\s*장\s*(?:만|까지)/.exec(text);
  const n = m ? Number(m[1]) : undefined;
  return n !== undefined && n >= 1 ? n : undefined;
}
