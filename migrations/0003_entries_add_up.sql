ALTER TABLE `ledger_entries` ADD `member_team_id` text;--> statement-breakpoint
ALTER TABLE `ledger_entries` ADD `chain_version` integer DEFAULT 1 NOT NULL;--> statement-breakpoint
-- The history adds up line by line: a capture moves nothing and says so. Captures replicated
-- before chain version 2 were written as 'out'; they become 'none' and still verify (their
-- version-1 canonical form restores 'out', see src/domain/chain.ts). Written by hand.
UPDATE `ledger_entries` SET `direction` = 'none' WHERE `type` = 'capture' AND `direction` <> 'none';
