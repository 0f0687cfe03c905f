CREATE TABLE "rate_buckets" (
	"scope" text NOT NULL,
	"bucket_start" timestamp with time zone NOT NULL,
	"amount" bigint NOT NULL,
	CONSTRAINT "rate_buckets_scope_bucket_start_pk" PRIMARY KEY("scope","bucket_start")
);
--> statement-breakpoint
CREATE TABLE "service_token_rate_limits" (
	"token_id" uuid PRIMARY KEY NOT NULL,
	"jobs_per_minute" integer,
	"credit_micro_cs_per_hour" bigint,
	"updated_by" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "service_token_rate_limits_positive" CHECK ("service_token_rate_limits"."jobs_per_minute" > 0 and "service_token_rate_limits"."credit_micro_cs_per_hour" > 0)
);
--> statement-breakpoint
CREATE TABLE "unit_policies" (
	"org_unit_id" uuid PRIMARY KEY NOT NULL,
	"allowed_kinds" "job_kind"[],
	"allowed_products" text[],
	"max_resolution" text,
	"max_length_seconds" integer,
	"max_cost_micro_cs" bigint,
	"allowed_languages" text[],
	"jobs_per_minute" integer,
	"credit_micro_cs_per_hour" bigint,
	"updated_by" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "unit_policies_resolution" CHECK ("unit_policies"."max_resolution" in ('720p', '1080p', '4k')),
	CONSTRAINT "unit_policies_positive" CHECK ("unit_policies"."max_length_seconds" > 0 and "unit_policies"."max_cost_micro_cs" > 0 and "unit_policies"."jobs_per_minute" > 0 and "unit_policies"."credit_micro_cs_per_hour" > 0)
);
--> statement-breakpoint
ALTER TABLE "service_token_rate_limits" ADD CONSTRAINT "service_token_rate_limits_token_id_service_tokens_id_fk" FOREIGN KEY ("token_id") REFERENCES "public"."service_tokens"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "unit_policies" ADD CONSTRAINT "unit_policies_org_unit_id_org_units_id_fk" FOREIGN KEY ("org_unit_id") REFERENCES "public"."org_units"("id") ON DELETE no action ON UPDATE no action;