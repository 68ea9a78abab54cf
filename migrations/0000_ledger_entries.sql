CREATE TABLE `ledger_entries` (
	`team_id` text NOT NULL,
	`seq` integer NOT NULL,
	`id` text NOT NULL,
	`created_at_ms` integer NOT NULL,
	`type` text NOT NULL,
	`direction` text NOT NULL,
	`amount_credits` integer NOT NULL,
	`balance_after_credits` integer NOT NULL,
	`grant_id` text,
	`hold_id` text,
	`spend_id` text,
	`feature` text,
	`quantity` integer,
	`dimensions` text,
	`reference` text,
	`actor` text,
	PRIMARY KEY(`team_id`, `seq`)
);
--> statement-breakpoint
CREATE INDEX `ledger_entries_team_created` ON `ledger_entries` (`team_id`,`created_at_ms`);