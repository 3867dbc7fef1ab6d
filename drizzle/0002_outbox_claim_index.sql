DROP INDEX "webhook_outbox_due";--> statement-breakpoint
CREATE INDEX "webhook_outbox_claim" ON "webhook_outbox" USING btree ("rule_id","due_at") WHERE "webhook_outbox"."status" = 'pending';--> statement-breakpoint
CREATE INDEX "webhook_outbox_settled" ON "webhook_outbox" USING btree ("status","due_at") WHERE "webhook_outbox"."status" <> 'pending';