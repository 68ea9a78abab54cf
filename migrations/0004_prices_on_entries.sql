ALTER TABLE `ledger_entries` ADD `tier` text;--> statement-breakpoint
ALTER TABLE `ledger_entries` ADD `unit_credits` integer;--> statement-breakpoint
ALTER TABLE `ledger_entries` ADD `price_version` integer;