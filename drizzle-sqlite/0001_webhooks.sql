CREATE TABLE `webhook_outbox` (
	`id` text PRIMARY KEY NOT NULL,
	`dedupe` text NOT NULL,
	`rule_id` text NOT NULL,
	`key` text NOT NULL,
	`kind` text NOT NULL,
	`value` integer NOT NULL,
	`total` integer NOT NULL,
	`online` integer,
	`status` text DEFAULT 'pending' NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL,
	`due_at` integer NOT NULL,
	`locked_until` integer,
	`delivered_at` integer,
	`last_error` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `webhook_outbox_dedupe_unique` ON `webhook_outbox` (`dedupe`);--> statement-breakpoint
CREATE INDEX `webhook_outbox_due` ON `webhook_outbox` (`status`,`due_at`);--> statement-breakpoint
CREATE TABLE `webhook_state` (
	`rule_id` text NOT NULL,
	`key` text NOT NULL,
	`armed` integer NOT NULL,
	`generation` integer NOT NULL,
	PRIMARY KEY(`rule_id`, `key`)
);
