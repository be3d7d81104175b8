DROP INDEX `usage_tenant_ts`;--> statement-breakpoint
DROP INDEX `usage_ts`;--> statement-breakpoint
CREATE INDEX `usage_ts_tenant` ON `usage` (`ts`,`tenant_id`);