CREATE TYPE "public"."mappable_role" AS ENUM('ADMIN', 'FINANCE', 'MANAGER', 'MEMBER');--> statement-breakpoint
CREATE TABLE "role_mappings" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"claim" text NOT NULL,
	"value" text NOT NULL,
	"role" "mappable_role" NOT NULL,
	"org_unit_id" uuid,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "role_mappings_claim_value_role_unit" UNIQUE NULLS NOT DISTINCT("claim","value","role","org_unit_id"),
	CONSTRAINT "role_mappings_unit_for_scoped_roles" CHECK (("role_mappings"."role" in ('MANAGER', 'MEMBER')) = ("role_mappings"."org_unit_id" is not null))
);
--> statement-breakpoint
ALTER TABLE "audit_events" ADD COLUMN "actor_token_id" text;--> statement-breakpoint
ALTER TABLE "audit_events" ADD COLUMN "request_id" text;--> statement-breakpoint
ALTER TABLE "role_mappings" ADD CONSTRAINT "role_mappings_org_unit_id_org_units_id_fk" FOREIGN KEY ("org_unit_id") REFERENCES "public"."org_units"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "audit_events_created" ON "audit_events" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "audit_events_actor" ON "audit_events" USING btree ("actor_subject","created_at");