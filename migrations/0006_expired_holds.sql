ALTER TYPE "public"."job_status" ADD VALUE 'EXPIRED';--> statement-breakpoint
CREATE TABLE "drift_notes" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"account_id" uuid NOT NULL,
	"job_id" uuid NOT NULL,
	"project_id" uuid NOT NULL,
	"period" text NOT NULL,
	"reason" text NOT NULL,
	"released_micro_cs" bigint NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "drift_notes_job" UNIQUE("job_id")
);
--> statement-breakpoint
ALTER TABLE "drift_notes" ADD CONSTRAINT "drift_notes_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "drift_notes" ADD CONSTRAINT "drift_notes_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "drift_notes" ADD CONSTRAINT "drift_notes_project_id_org_units_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."org_units"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "drift_notes_account_period" ON "drift_notes" USING btree ("account_id","period");