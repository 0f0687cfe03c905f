ALTER TABLE "jobs" ADD COLUMN "last_checked_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "hinted_at" timestamp with time zone;