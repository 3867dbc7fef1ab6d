CREATE TABLE "daily" (
	"key" text NOT NULL,
	"day" text NOT NULL,
	"visits" bigint NOT NULL,
	"visitors" bigint NOT NULL,
	"bots" bigint NOT NULL,
	CONSTRAINT "daily_key_day_pk" PRIMARY KEY("key","day")
);
--> statement-breakpoint
-- Hand-edited: UNLOGGED (drizzle-kit cannot express it). The day's hashes and salts are not written to the WAL,
-- not replicated, and emptied by a crash (that day's visitors are then recounted once). See README "Privacy".
CREATE UNLOGGED TABLE "visitor_hashes" (
	"key" text NOT NULL,
	"day" text NOT NULL,
	"hash" text NOT NULL,
	CONSTRAINT "visitor_hashes_key_day_hash_pk" PRIMARY KEY("key","day","hash")
);
--> statement-breakpoint
CREATE UNLOGGED TABLE "visitor_salts" (
	"day" text PRIMARY KEY NOT NULL,
	"salt" text NOT NULL
);
