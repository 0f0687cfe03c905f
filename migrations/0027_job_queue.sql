ALTER TYPE "public"."job_status" ADD VALUE 'QUEUED' BEFORE 'RESERVED';--> statement-breakpoint
CREATE TABLE "concurrency_shares" (
	"account_id" uuid NOT NULL,
	"org_unit_id" uuid NOT NULL,
	"weight" integer NOT NULL,
	"min_slots" integer DEFAULT 0 NOT NULL,
	"max_slots" integer,
	"updated_by" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "concurrency_shares_account_id_org_unit_id_pk" PRIMARY KEY("account_id","org_unit_id"),
	CONSTRAINT "concurrency_shares_weight" CHECK ("concurrency_shares"."weight" > 0),
	CONSTRAINT "concurrency_shares_min" CHECK ("concurrency_shares"."min_slots" >= 0),
	CONSTRAINT "concurrency_shares_max" CHECK ("concurrency_shares"."max_slots" is null or "concurrency_shares"."max_slots" >= greatest("concurrency_shares"."min_slots", 1))
);
--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "queued_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "concurrency_shares" ADD CONSTRAINT "concurrency_shares_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "concurrency_shares" ADD CONSTRAINT "concurrency_shares_org_unit_id_org_units_id_fk" FOREIGN KEY ("org_unit_id") REFERENCES "public"."org_units"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "jobs_queued" ON "jobs" USING btree ("account_id","project_id","created_at","id") WHERE queued_at is not null;