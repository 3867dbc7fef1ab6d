CREATE TABLE `daily` (
	`key` text NOT NULL,
	`day` text NOT NULL,
	`visits` integer NOT NULL,
	`visitors` integer NOT NULL,
	`bots` integer NOT NULL,
	PRIMARY KEY(`key`, `day`)
);
--> statement-breakpoint
-- Hand-edited: WITHOUT ROWID (drizzle-kit cannot express it): the primary key is the table, not a second copy of it.
CREATE TABLE `visitor_hashes` (
	`key` text NOT NULL,
	`day` text NOT NULL,
	`hash` text NOT NULL,
	PRIMARY KEY(`key`, `day`, `hash`)
) WITHOUT ROWID;
--> statement-breakpoint
CREATE TABLE `visitor_salts` (
	`day` text PRIMARY KEY NOT NULL,
	`salt` text NOT NULL
);
