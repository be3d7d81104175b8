export { ConcurrencyGate } from "./concurrency.ts";
export { type MaintenanceOptions, startLimitsMaintenance } from "./maintenance.ts";
export { isValidTimeZone, type Period, type PeriodSpec, periodOf } from "./periods.ts";
export { createLimitsPolicy, type LimitsDeps } from "./policy.ts";
export { type QuotaCounter, QuotaCounters } from "./quota-counters.ts";
export { MemoryQuotaStore, type QuotaRow, type QuotaStore, SqliteQuotaStore } from "./quota-store.ts";
export { SlidingWindows } from "./sliding-windows.ts";
