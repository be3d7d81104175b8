CREATE TABLE `credentials` (
	`name` text PRIMARY KEY NOT NULL,
	`description` text,
	`ciphertext` blob NOT NULL,
	`iv` blob NOT NULL,
	`key_id` text NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE `tenants` ADD `credentials` text DEFAULT '{}' NOT NULL;