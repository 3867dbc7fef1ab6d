DROP INDEX `webhook_outbox_due`;--> statement-breakpoint
CREATE INDEX `webhook_outbox_claim` ON `webhook_outbox` (`rule_id`,`due_at`) WHERE "webhook_outbox"."status" = 'pending';--> statement-breakpoint
CREATE INDEX `webhook_outbox_settled` ON `webhook_outbox` (`status`,`due_at`) WHERE "webhook_outbox"."status" <> 'pending';