CREATE INDEX `ledger_entries_team_type_seq` ON `ledger_entries` (`team_id`,`type`,`seq`);--> statement-breakpoint
CREATE INDEX `ledger_entries_team_type_created` ON `ledger_entries` (`team_id`,`type`,`created_at_ms`);--> statement-breakpoint
CREATE INDEX `ledger_entries_team_hold` ON `ledger_entries` (`team_id`,`hold_id`) WHERE "ledger_entries"."hold_id" IS NOT NULL;