/** What one adapter reports about itself for /readyz. */
export interface Health {
  /** Port name, e.g. `db`, `cache`. */
  port: string;
  /** Adapter name, e.g. `sqlite`, `mysql`, `memory`, `redis`. */
  adapter: string;
  ok: boolean;
  /** Why it is not ok, and which variable points at the service. */
  detail?: string;
}
