CREATE TABLE "group_budgets" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"org_unit_id" uuid NOT NULL,
	"account_id" uuid,
	"window" "budget_window" NOT NULL,
	"limit_micro_cs" bigint NOT NULL,
	"tag_key" text,
	"tag_value" text,
	"person" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "group_budgets_scope" UNIQUE NULLS NOT DISTINCT("org_unit_id","account_id","window","tag_key","tag_value","person"),
	CONSTRAINT "group_budgets_limit_non_negative" CHECK ("group_budgets"."limit_micro_cs" >= 0),
	CONSTRAINT "group_budgets_one_group" CHECK (("group_budgets"."tag_key" is not null and "group_budgets"."tag_value" is not null and "group_budgets"."person" is null) or ("group_budgets"."tag_key" is null and "group_budgets"."tag_value" is null and "group_budgets"."person" is not null)),
	CONSTRAINT "group_budgets_period_window" CHECK ("group_budgets"."window"::text in ('MONTHLY', 'QUARTERLY', 'CONTRACT_TERM', 'LIFETIME'))
);
--> statement-breakpoint
CREATE TABLE "tag_keys" (
	"organization_id" uuid NOT NULL,
	"key" text NOT NULL,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "tag_keys_organization_id_key_pk" PRIMARY KEY("organization_id","key")
);
--> statement-breakpoint
CREATE TABLE "usage_person_rollups" (
	"org_unit_id" uuid NOT NULL,
	"account_id" uuid NOT NULL,
	"period" text NOT NULL,
	"person" text NOT NULL,
	"reserved_micro_cs" bigint DEFAULT 0 NOT NULL,
	"settled_micro_cs" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "usage_person_rollups_org_unit_id_account_id_period_person_pk" PRIMARY KEY("org_unit_id","account_id","period","person"),
	CONSTRAINT "usage_person_rollups_reserved_non_negative" CHECK ("usage_person_rollups"."reserved_micro_cs" >= 0)
);
--> statement-breakpoint
CREATE TABLE "usage_tag_rollups" (
	"org_unit_id" uuid NOT NULL,
	"account_id" uuid NOT NULL,
	"period" text NOT NULL,
	"tags" jsonb NOT NULL,
	"reserved_micro_cs" bigint DEFAULT 0 NOT NULL,
	"settled_micro_cs" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "usage_tag_rollups_org_unit_id_account_id_period_tags_pk" PRIMARY KEY("org_unit_id","account_id","period","tags"),
	CONSTRAINT "usage_tag_rollups_reserved_non_negative" CHECK ("usage_tag_rollups"."reserved_micro_cs" >= 0)
);
--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "end_user" text;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "tags" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "group_budgets" ADD CONSTRAINT "group_budgets_org_unit_id_org_units_id_fk" FOREIGN KEY ("org_unit_id") REFERENCES "public"."org_units"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "group_budgets" ADD CONSTRAINT "group_budgets_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tag_keys" ADD CONSTRAINT "tag_keys_organization_id_org_units_id_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."org_units"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "usage_person_rollups" ADD CONSTRAINT "usage_person_rollups_org_unit_id_org_units_id_fk" FOREIGN KEY ("org_unit_id") REFERENCES "public"."org_units"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "usage_person_rollups" ADD CONSTRAINT "usage_person_rollups_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "usage_tag_rollups" ADD CONSTRAINT "usage_tag_rollups_org_unit_id_org_units_id_fk" FOREIGN KEY ("org_unit_id") REFERENCES "public"."org_units"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "usage_tag_rollups" ADD CONSTRAINT "usage_tag_rollups_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;