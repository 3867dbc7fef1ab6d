CREATE TABLE "counters" (
	"key" text PRIMARY KEY NOT NULL,
	"total" bigint NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "settings" (
	"name" text PRIMARY KEY NOT NULL,
	"value" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "visits_per_minute" (
	"key" text NOT NULL,
	"minute" timestamp with time zone NOT NULL,
	"visits" bigint NOT NULL,
	CONSTRAINT "visits_per_minute_key_minute_pk" PRIMARY KEY("key","minute")
);
