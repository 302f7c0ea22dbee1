/** Tables of the governance domain (filled in by its migration). */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface GovernanceTables {}
