CREATE TABLE "webhook_outbox" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"dedupe" text NOT NULL,
	"rule_id" text NOT NULL,
	"key" text NOT NULL,
	"kind" text NOT NULL,
	"value" bigint NOT NULL,
	"total" bigint NOT NULL,
	"online" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"due_at" timestamp with time zone DEFAULT now() NOT NULL,
	"locked_until" timestamp with time zone,
	"attempts" integer DEFAULT 0 NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"last_error" text,
	"delivered_at" timestamp with time zone,
	CONSTRAINT "webhook_outbox_dedupe_unique" UNIQUE("dedupe")
);
--> statement-breakpoint
CREATE TABLE "webhook_rules" (
	"id" text PRIMARY KEY NOT NULL,
	"match_key" text,
	"match_prefix" text,
	"every" bigint,
	"milestones" bigint[]
);
--> statement-breakpoint
CREATE TABLE "webhook_state" (
	"rule_id" text NOT NULL,
	"key" text NOT NULL,
	"armed" boolean NOT NULL,
	"generation" integer NOT NULL,
	CONSTRAINT "webhook_state_rule_id_key_pk" PRIMARY KEY("rule_id","key")
);
--> statement-breakpoint
CREATE INDEX "webhook_outbox_due" ON "webhook_outbox" USING btree ("status","due_at");