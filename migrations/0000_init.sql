CREATE TYPE "public"."allocation_policy" AS ENUM('PROPORTIONAL', 'MARGINAL', 'COMMITTED_SHARES');--> statement-breakpoint
CREATE TYPE "public"."billing_model" AS ENUM('USAGE_BASED', 'CREDIT_PACKAGE');--> statement-breakpoint
CREATE TYPE "public"."budget_window" AS ENUM('MONTHLY', 'CONTRACT_TERM', 'LIFETIME');--> statement-breakpoint
CREATE TYPE "public"."enforcement" AS ENUM('HARD', 'SOFT');--> statement-breakpoint
CREATE TYPE "public"."job_kind" AS ENUM('AVATAR_VIDEO', 'TEMPLATE_VIDEO', 'VIDEO_TRANSLATION', 'VIDEO_AGENT');--> statement-breakpoint
CREATE TYPE "public"."job_status" AS ENUM('RESERVED', 'SUBMIT_UNKNOWN', 'SUBMITTED', 'PROCESSING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'REJECTED');--> statement-breakpoint
CREATE TYPE "public"."ledger_entry_type" AS ENUM('HOLD', 'RELEASE', 'DEBIT', 'ADJUSTMENT');--> statement-breakpoint
CREATE TYPE "public"."org_unit_kind" AS ENUM('ORGANIZATION', 'DEPARTMENT', 'TEAM', 'PROJECT');--> statement-breakpoint
CREATE TABLE "account_terms" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"account_id" uuid NOT NULL,
	"effective_from" text NOT NULL,
	"mmc_usd" numeric,
	"included_micro_cs" bigint,
	"contract_rate_usd" numeric,
	"overage_rate_usd" numeric,
	"pool_micro_cs" bigint,
	"price_per_cs_usd" numeric,
	"term_start" text,
	"term_end" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "account_terms_account_effective" UNIQUE("account_id","effective_from")
);
--> statement-breakpoint
CREATE TABLE "accounts" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"billing_model" "billing_model" NOT NULL,
	"api_key_ciphertext" text NOT NULL,
	"api_key_hint" text NOT NULL,
	"webhook_secret_ciphertext" text,
	"base_url" text NOT NULL,
	"concurrency_limit" integer NOT NULL,
	"timezone" text DEFAULT 'UTC' NOT NULL,
	"price_book" jsonb NOT NULL,
	"allocation_policy" "allocation_policy" DEFAULT 'PROPORTIONAL' NOT NULL,
	"cost_centre_unit_id" uuid,
	"wallet_credit_unit_seconds" integer DEFAULT 60 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "accounts_name_unique" UNIQUE("name"),
	CONSTRAINT "accounts_concurrency_positive" CHECK ("accounts"."concurrency_limit" > 0)
);
--> statement-breakpoint
CREATE TABLE "budgets" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"org_unit_id" uuid NOT NULL,
	"account_id" uuid,
	"window" "budget_window" NOT NULL,
	"limit_micro_cs" bigint NOT NULL,
	"enforcement" "enforcement" DEFAULT 'HARD' NOT NULL,
	"allow_overage" boolean DEFAULT true NOT NULL,
	"alert_thresholds" integer[] DEFAULT '{50,80,100}'::integer[] NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "budgets_unit_account_window" UNIQUE NULLS NOT DISTINCT("org_unit_id","account_id","window"),
	CONSTRAINT "budgets_limit_non_negative" CHECK ("budgets"."limit_micro_cs" >= 0)
);
--> statement-breakpoint
CREATE TABLE "job_items" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"job_id" uuid NOT NULL,
	"upstream_id" text NOT NULL,
	"kind" text NOT NULL,
	"video_id" text,
	"language" text,
	"status" text DEFAULT 'pending' NOT NULL,
	"duration_seconds" numeric,
	"cost_micro_cs" bigint,
	"failure_message" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "job_items_job_upstream" UNIQUE("job_id","upstream_id")
);
--> statement-breakpoint
CREATE TABLE "jobs" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"project_id" uuid NOT NULL,
	"account_id" uuid NOT NULL,
	"kind" "job_kind" NOT NULL,
	"status" "job_status" NOT NULL,
	"request" jsonb NOT NULL,
	"request_hash" text NOT NULL,
	"idempotency_scope" text NOT NULL,
	"idempotency_key" text,
	"created_by" text NOT NULL,
	"product" text NOT NULL,
	"rate_micro_cs_per_second" bigint NOT NULL,
	"estimated_seconds" numeric NOT NULL,
	"estimated_micro_cs" bigint NOT NULL,
	"reserved_micro_cs" bigint NOT NULL,
	"hold_period" text NOT NULL,
	"actual_seconds" numeric,
	"actual_micro_cs" bigint,
	"overrun_micro_cs" bigint,
	"settled_period" text,
	"failure_code" text,
	"failure_message" text,
	"submit_attempts" integer DEFAULT 0 NOT NULL,
	"check_attempts" integer DEFAULT 0 NOT NULL,
	"next_check_at" timestamp with time zone,
	"hold_expires_at" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"submitted_at" timestamp with time zone,
	"settled_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "jobs_idempotency" UNIQUE("idempotency_scope","idempotency_key"),
	CONSTRAINT "jobs_reserved_non_negative" CHECK ("jobs"."reserved_micro_cs" >= 0)
);
--> statement-breakpoint
CREATE TABLE "ledger_entries" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"job_id" uuid,
	"entry_type" "ledger_entry_type" NOT NULL,
	"account_id" uuid NOT NULL,
	"org_unit_id" uuid NOT NULL,
	"period" text NOT NULL,
	"amount_micro_cs" bigint NOT NULL,
	"note" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "ledger_one_per_job_type" UNIQUE("job_id","entry_type"),
	CONSTRAINT "ledger_amount_sign" CHECK ("ledger_entries"."entry_type" = 'ADJUSTMENT' or "ledger_entries"."amount_micro_cs" >= 0)
);
--> statement-breakpoint
CREATE TABLE "org_units" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"parent_id" uuid,
	"kind" "org_unit_kind" NOT NULL,
	"name" text NOT NULL,
	"path" uuid[] NOT NULL,
	"depth" integer NOT NULL,
	"account_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "org_units_parent_name" UNIQUE NULLS NOT DISTINCT("parent_id","name")
);
--> statement-breakpoint
CREATE TABLE "service_tokens" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"org_unit_id" uuid NOT NULL,
	"name" text NOT NULL,
	"created_by" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"revoked_at" timestamp with time zone,
	"last_used_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "signing_keys" (
	"kid" text PRIMARY KEY NOT NULL,
	"alg" text NOT NULL,
	"private_key_ciphertext" text NOT NULL,
	"public_jwk" jsonb NOT NULL,
	"active" boolean DEFAULT true NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "usage_rollups" (
	"org_unit_id" uuid NOT NULL,
	"account_id" uuid NOT NULL,
	"period" text NOT NULL,
	"reserved_micro_cs" bigint DEFAULT 0 NOT NULL,
	"settled_micro_cs" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "usage_rollups_org_unit_id_account_id_period_pk" PRIMARY KEY("org_unit_id","account_id","period"),
	CONSTRAINT "usage_rollups_reserved_non_negative" CHECK ("usage_rollups"."reserved_micro_cs" >= 0)
);
--> statement-breakpoint
ALTER TABLE "account_terms" ADD CONSTRAINT "account_terms_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "budgets" ADD CONSTRAINT "budgets_org_unit_id_org_units_id_fk" FOREIGN KEY ("org_unit_id") REFERENCES "public"."org_units"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "budgets" ADD CONSTRAINT "budgets_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "job_items" ADD CONSTRAINT "job_items_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_project_id_org_units_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."org_units"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_org_unit_id_org_units_id_fk" FOREIGN KEY ("org_unit_id") REFERENCES "public"."org_units"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "org_units" ADD CONSTRAINT "org_units_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "service_tokens" ADD CONSTRAINT "service_tokens_org_unit_id_org_units_id_fk" FOREIGN KEY ("org_unit_id") REFERENCES "public"."org_units"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "usage_rollups" ADD CONSTRAINT "usage_rollups_org_unit_id_org_units_id_fk" FOREIGN KEY ("org_unit_id") REFERENCES "public"."org_units"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "usage_rollups" ADD CONSTRAINT "usage_rollups_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "job_items_upstream" ON "job_items" USING btree ("upstream_id");--> statement-breakpoint
CREATE INDEX "job_items_video" ON "job_items" USING btree ("video_id");--> statement-breakpoint
CREATE INDEX "jobs_in_flight" ON "jobs" USING btree ("account_id") WHERE status in ('RESERVED','SUBMIT_UNKNOWN','SUBMITTED','PROCESSING');--> statement-breakpoint
CREATE INDEX "jobs_due" ON "jobs" USING btree ("next_check_at") WHERE next_check_at is not null;--> statement-breakpoint
CREATE INDEX "jobs_project_created" ON "jobs" USING btree ("project_id","created_at","id");--> statement-breakpoint
CREATE INDEX "ledger_job" ON "ledger_entries" USING btree ("job_id");--> statement-breakpoint
CREATE INDEX "ledger_account_period" ON "ledger_entries" USING btree ("account_id","period");--> statement-breakpoint
CREATE INDEX "org_units_path_gin" ON "org_units" USING gin ("path");--> statement-breakpoint
CREATE INDEX "service_tokens_unit" ON "service_tokens" USING btree ("org_unit_id");