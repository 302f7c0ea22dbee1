/** What a caller asks of a list: how many rows, after how many. */
export interface PageRequest {
  limit?: number;
  offset?: number;
}

/** The page a list returns: the requested size (or `size.default`) kept between 1 and `size.max`, and an offset never below 0. */
export function page(
  req: PageRequest,
  size: { default: number; max: number },
): { limit: number; offset: number } {
  return {
    limit: Math.min(Math.max(req.limit ?? size.default, 1), size.max),
    offset: Math.max(req.offset ?? 0, 0),
  };
}
