CREATE TABLE `history_dead_letters` (
	`team_id` text NOT NULL,
	`from_seq` integer NOT NULL,
	`to_seq` integer NOT NULL,
	`attempts` integer NOT NULL,
	`dead_at_ms` integer NOT NULL,
	PRIMARY KEY(`team_id`, `from_seq`, `to_seq`)
);
--> statement-breakpoint
CREATE TABLE `history_marks` (
	`team_id` text PRIMARY KEY NOT NULL,
	`contiguous_seq` integer NOT NULL
);
--> statement-breakpoint
-- Written by hand: the history delivered before the queue arrived in order (the outbox moved its
-- mark only after D1 confirmed a batch, oldest first), so each team's rows are contiguous from 1.
-- A mark a landing already wrote (its walk counted what is there) is kept.
INSERT INTO `history_marks` (`team_id`, `contiguous_seq`) SELECT `team_id`, MAX(`seq`) FROM `ledger_entries` WHERE true GROUP BY `team_id` ON CONFLICT (`team_id`) DO NOTHING;
