ALTER TYPE "public"."budget_window" ADD VALUE 'DAILY';--> statement-breakpoint
ALTER TYPE "public"."budget_window" ADD VALUE 'WEEKLY';--> statement-breakpoint
ALTER TYPE "public"."budget_window" ADD VALUE 'QUARTERLY';--> statement-breakpoint
ALTER TYPE "public"."budget_window" ADD VALUE 'CUSTOM';--> statement-breakpoint
ALTER TABLE "budgets" ADD COLUMN "window_from" date;--> statement-breakpoint
ALTER TABLE "budgets" ADD COLUMN "window_to" date;--> statement-breakpoint
ALTER TABLE "budgets" ADD COLUMN "rollover_cap_micro_cs" bigint;--> statement-breakpoint
ALTER TABLE "budgets" ADD COLUMN "rollover_from" text;--> statement-breakpoint
ALTER TABLE "budgets" ADD CONSTRAINT "budgets_custom_dates" CHECK (("budgets"."window"::text = 'CUSTOM') = ("budgets"."window_from" is not null and "budgets"."window_to" is not null) and ("budgets"."window_from" is null or "budgets"."window_from" < "budgets"."window_to"));--> statement-breakpoint
ALTER TABLE "budgets" ADD CONSTRAINT "budgets_rollover_monthly" CHECK (("budgets"."rollover_cap_micro_cs" is null or ("budgets"."window"::text = 'MONTHLY' and "budgets"."rollover_cap_micro_cs" >= 0 and "budgets"."rollover_from" is not null)));