-- Writers of the ledger are held off first (as 0030's backfill needs), before this migration's DDL takes locks that
-- their triggers wait for (budget_alert_states, group_budgets): taken in the other order, a settlement holding the
-- ledger and waiting for those tables, and this migration holding them and waiting for the ledger, would deadlock.
LOCK TABLE ledger_entries IN SHARE MODE;--> statement-breakpoint
CREATE TABLE "usage_person_daily" (
	"org_unit_id" uuid NOT NULL,
	"account_id" uuid NOT NULL,
	"day" date NOT NULL,
	"person" text NOT NULL,
	"reserved_micro_cs" bigint DEFAULT 0 NOT NULL,
	"settled_micro_cs" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "usage_person_daily_org_unit_id_account_id_day_person_pk" PRIMARY KEY("org_unit_id","account_id","day","person"),
	CONSTRAINT "usage_person_daily_reserved_non_negative" CHECK ("usage_person_daily"."reserved_micro_cs" >= 0)
);
--> statement-breakpoint
CREATE TABLE "usage_tag_daily" (
	"org_unit_id" uuid NOT NULL,
	"account_id" uuid NOT NULL,
	"day" date NOT NULL,
	"tags" jsonb NOT NULL,
	"reserved_micro_cs" bigint DEFAULT 0 NOT NULL,
	"settled_micro_cs" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "usage_tag_daily_org_unit_id_account_id_day_tags_pk" PRIMARY KEY("org_unit_id","account_id","day","tags"),
	CONSTRAINT "usage_tag_daily_reserved_non_negative" CHECK ("usage_tag_daily"."reserved_micro_cs" >= 0)
);
--> statement-breakpoint
ALTER TABLE "group_budgets" DROP CONSTRAINT "group_budgets_period_window";--> statement-breakpoint
ALTER TABLE "budget_alert_states" DROP CONSTRAINT "budget_alert_states_budget_id_budgets_id_fk";
--> statement-breakpoint
ALTER TABLE "group_budgets" ADD COLUMN "alert_thresholds" integer[] DEFAULT '{50,80,100}'::integer[] NOT NULL;--> statement-breakpoint
ALTER TABLE "group_budgets" ADD COLUMN "window_from" date;--> statement-breakpoint
ALTER TABLE "group_budgets" ADD COLUMN "window_to" date;--> statement-breakpoint
ALTER TABLE "usage_person_daily" ADD CONSTRAINT "usage_person_daily_org_unit_id_org_units_id_fk" FOREIGN KEY ("org_unit_id") REFERENCES "public"."org_units"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "usage_person_daily" ADD CONSTRAINT "usage_person_daily_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "usage_tag_daily" ADD CONSTRAINT "usage_tag_daily_org_unit_id_org_units_id_fk" FOREIGN KEY ("org_unit_id") REFERENCES "public"."org_units"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "usage_tag_daily" ADD CONSTRAINT "usage_tag_daily_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "group_budgets" ADD CONSTRAINT "group_budgets_custom_dates" CHECK (("group_budgets"."window"::text = 'CUSTOM') = ("group_budgets"."window_from" is not null and "group_budgets"."window_to" is not null) and ("group_budgets"."window_from" is null or "group_budgets"."window_from" < "group_budgets"."window_to"));