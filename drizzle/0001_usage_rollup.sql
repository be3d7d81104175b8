CREATE TABLE `usage_rollup` (
	`grain` integer NOT NULL,
	`dim` text NOT NULL,
	`start` integer NOT NULL,
	`tenant_id` text NOT NULL,
	`value` text NOT NULL,
	`requests` integer NOT NULL,
	`errors` integer NOT NULL,
	`cost` integer NOT NULL,
	`bytes_in` integer NOT NULL,
	`bytes_out` integer NOT NULL,
	`upstream_count` integer NOT NULL,
	`upstream_ms` real NOT NULL,
	`latency_min` real NOT NULL,
	`latency_max` real NOT NULL,
	`latency_hist` blob NOT NULL,
	PRIMARY KEY(`grain`, `dim`, `start`, `tenant_id`, `value`)
);
