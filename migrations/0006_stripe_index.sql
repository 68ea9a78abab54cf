CREATE TABLE `stripe_payment_intents` (
	`payment_intent_id` text PRIMARY KEY NOT NULL,
	`team_id` text NOT NULL,
	`purchase_id` text NOT NULL,
	`created_at_ms` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `stripe_unmatched_events` (
	`event_id` text PRIMARY KEY NOT NULL,
	`type` text NOT NULL,
	`team_id` text,
	`reason` text NOT NULL,
	`payload` text NOT NULL,
	`received_at_ms` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `stripe_unmatched_received` ON `stripe_unmatched_events` (`received_at_ms`);