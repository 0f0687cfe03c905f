CREATE TABLE "usage_daily" (
	"org_unit_id" uuid NOT NULL,
	"account_id" uuid NOT NULL,
	"product" text NOT NULL,
	"day" date NOT NULL,
	"reserved_micro_cs" bigint DEFAULT 0 NOT NULL,
	"settled_micro_cs" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "usage_daily_org_unit_id_account_id_day_product_pk" PRIMARY KEY("org_unit_id","account_id","day","product")
);
--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "hold_day" date;--> statement-breakpoint
ALTER TABLE "ledger_entries" ADD COLUMN "day" date;--> statement-breakpoint
ALTER TABLE "usage_daily" ADD CONSTRAINT "usage_daily_org_unit_id_org_units_id_fk" FOREIGN KEY ("org_unit_id") REFERENCES "public"."org_units"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "usage_daily" ADD CONSTRAINT "usage_daily_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;