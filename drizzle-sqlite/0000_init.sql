CREATE TABLE `counters` (
	`key` text PRIMARY KEY NOT NULL,
	`total` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `settings` (
	`name` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `visits_per_minute` (
	`key` text NOT NULL,
	`minute` integer NOT NULL,
	`visits` integer NOT NULL,
	PRIMARY KEY(`key`, `minute`)
);
