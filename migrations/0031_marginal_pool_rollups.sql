CREATE TABLE "usage_pool_periods" (
	"account_id" uuid NOT NULL,
	"period" text NOT NULL,
	"included_micro_cs" bigint NOT NULL,
	"settled_micro_cs" bigint DEFAULT 0 NOT NULL,
	"last_at" timestamp with time zone,
	"last_id" bigint,
	"corrected" boolean DEFAULT false NOT NULL,
	CONSTRAINT "usage_pool_periods_account_id_period_pk" PRIMARY KEY("account_id","period")
);
--> statement-breakpoint
CREATE TABLE "usage_pool_rollups" (
	"account_id" uuid NOT NULL,
	"period" text NOT NULL,
	"org_unit_id" uuid NOT NULL,
	"settled_micro_cs" bigint DEFAULT 0 NOT NULL,
	"in_pool_micro_cs" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "usage_pool_rollups_account_id_period_org_unit_id_pk" PRIMARY KEY("account_id","period","org_unit_id")
);
--> statement-breakpoint
ALTER TABLE "usage_pool_periods" ADD CONSTRAINT "usage_pool_periods_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "usage_pool_rollups" ADD CONSTRAINT "usage_pool_rollups_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "usage_pool_rollups" ADD CONSTRAINT "usage_pool_rollups_org_unit_id_org_units_id_fk" FOREIGN KEY ("org_unit_id") REFERENCES "public"."org_units"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "ledger_settlement_order" ON "ledger_entries" USING btree ("account_id","period","created_at") WHERE entry_type in ('DEBIT', 'ADJUSTMENT');