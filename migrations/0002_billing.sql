CREATE TABLE "audit_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"actor_subject" text NOT NULL,
	"actor_role" text NOT NULL,
	"action" text NOT NULL,
	"entity_type" text NOT NULL,
	"entity_id" text NOT NULL,
	"before" jsonb,
	"after" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "billing_statements" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"account_id" uuid NOT NULL,
	"period" text NOT NULL,
	"statement" text NOT NULL,
	"closed_by" text NOT NULL,
	"closed_at" timestamp with time zone NOT NULL,
	CONSTRAINT "billing_statements_account_period" UNIQUE("account_id","period")
);
--> statement-breakpoint
CREATE TABLE "committed_shares" (
	"account_id" uuid NOT NULL,
	"effective_from" text NOT NULL,
	"org_unit_id" uuid NOT NULL,
	"share" numeric NOT NULL,
	"created_by" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "committed_shares_account_id_effective_from_org_unit_id_pk" PRIMARY KEY("account_id","effective_from","org_unit_id"),
	CONSTRAINT "committed_shares_range" CHECK ("committed_shares"."share" >= 0 and "committed_shares"."share" <= 1)
);
--> statement-breakpoint
CREATE TABLE "usage_adjustments" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"ledger_entry_id" bigint NOT NULL,
	"requested_period" text NOT NULL,
	"reason" text NOT NULL,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "usage_adjustments_ledger_entry_id_unique" UNIQUE("ledger_entry_id")
);
--> statement-breakpoint
CREATE TABLE "wallet_snapshots" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"account_id" uuid NOT NULL,
	"taken_at" timestamp with time zone NOT NULL,
	"compared_from" text NOT NULL,
	"compared_to" text NOT NULL,
	"billing_type" text,
	"included_credits" numeric,
	"remaining_credits" numeric,
	"spending_cap_usd" numeric,
	"spending_current_usd" numeric,
	"wallet_currency" text,
	"wallet_remaining_balance" numeric,
	"credit_unit_seconds" integer NOT NULL,
	"heygen_used_micro_cs" bigint,
	"gateway_used_micro_cs" bigint NOT NULL,
	"drift_micro_cs" bigint,
	"threshold_micro_cs" bigint NOT NULL,
	"flagged" boolean NOT NULL
);
--> statement-breakpoint
CREATE TABLE "wallet_sync_state" (
	"account_id" uuid PRIMARY KEY NOT NULL,
	"next_sync_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_attempt_at" timestamp with time zone,
	"last_error" text,
	"failures" integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
ALTER TABLE "account_terms" ADD COLUMN "preset" text;--> statement-breakpoint
ALTER TABLE "account_terms" ADD COLUMN "total_price_usd" numeric;--> statement-breakpoint
ALTER TABLE "account_terms" ADD COLUMN "allocation_policy" "allocation_policy" DEFAULT 'PROPORTIONAL' NOT NULL;--> statement-breakpoint
ALTER TABLE "account_terms" ADD COLUMN "cost_centre_unit_id" uuid;--> statement-breakpoint
ALTER TABLE "account_terms" ADD COLUMN "created_by" text;--> statement-breakpoint
ALTER TABLE "budgets" ADD COLUMN "limit_usd" numeric;--> statement-breakpoint
ALTER TABLE "billing_statements" ADD CONSTRAINT "billing_statements_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "committed_shares" ADD CONSTRAINT "committed_shares_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "committed_shares" ADD CONSTRAINT "committed_shares_org_unit_id_org_units_id_fk" FOREIGN KEY ("org_unit_id") REFERENCES "public"."org_units"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "usage_adjustments" ADD CONSTRAINT "usage_adjustments_ledger_entry_id_ledger_entries_id_fk" FOREIGN KEY ("ledger_entry_id") REFERENCES "public"."ledger_entries"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "wallet_snapshots" ADD CONSTRAINT "wallet_snapshots_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "wallet_sync_state" ADD CONSTRAINT "wallet_sync_state_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "audit_events_entity" ON "audit_events" USING btree ("entity_type","entity_id");--> statement-breakpoint
CREATE INDEX "wallet_snapshots_account_taken" ON "wallet_snapshots" USING btree ("account_id","taken_at","id");--> statement-breakpoint
CREATE INDEX "wallet_sync_due" ON "wallet_sync_state" USING btree ("next_sync_at");--> statement-breakpoint
ALTER TABLE "account_terms" ADD CONSTRAINT "account_terms_cost_centre_unit_id_org_units_id_fk" FOREIGN KEY ("cost_centre_unit_id") REFERENCES "public"."org_units"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "accounts" DROP COLUMN "allocation_policy";--> statement-breakpoint
ALTER TABLE "accounts" DROP COLUMN "cost_centre_unit_id";--> statement-breakpoint
ALTER TABLE "account_terms" ADD CONSTRAINT "account_terms_one_price" CHECK ("account_terms"."price_per_cs_usd" is null or "account_terms"."total_price_usd" is null);