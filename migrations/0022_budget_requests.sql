CREATE TABLE "budget_grants" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"budget_id" uuid NOT NULL,
	"request_id" uuid NOT NULL,
	"amount_micro_cs" bigint NOT NULL,
	"until" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "budget_grants_request" UNIQUE("request_id"),
	CONSTRAINT "budget_grants_amount_positive" CHECK ("budget_grants"."amount_micro_cs" > 0)
);
--> statement-breakpoint
CREATE TABLE "budget_requests" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"budget_id" uuid NOT NULL,
	"org_unit_id" uuid NOT NULL,
	"amount_micro_cs" bigint NOT NULL,
	"until" timestamp with time zone,
	"reason" text NOT NULL,
	"status" text DEFAULT 'PENDING' NOT NULL,
	"requested_by_subject" text NOT NULL,
	"requested_by_role" text NOT NULL,
	"requested_by_token_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"decided_by_subject" text,
	"decided_by_role" text,
	"decided_at" timestamp with time zone,
	"decision_note" text,
	CONSTRAINT "budget_requests_status" CHECK ("budget_requests"."status" in ('PENDING', 'APPROVED', 'REJECTED')),
	CONSTRAINT "budget_requests_amount_positive" CHECK ("budget_requests"."amount_micro_cs" > 0)
);
--> statement-breakpoint
ALTER TABLE "budget_grants" ADD CONSTRAINT "budget_grants_budget_id_budgets_id_fk" FOREIGN KEY ("budget_id") REFERENCES "public"."budgets"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "budget_grants" ADD CONSTRAINT "budget_grants_request_id_budget_requests_id_fk" FOREIGN KEY ("request_id") REFERENCES "public"."budget_requests"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "budget_requests" ADD CONSTRAINT "budget_requests_budget_id_budgets_id_fk" FOREIGN KEY ("budget_id") REFERENCES "public"."budgets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "budget_requests" ADD CONSTRAINT "budget_requests_org_unit_id_org_units_id_fk" FOREIGN KEY ("org_unit_id") REFERENCES "public"."org_units"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "budget_grants_budget_until" ON "budget_grants" USING btree ("budget_id","until");--> statement-breakpoint
CREATE INDEX "budget_requests_unit_status" ON "budget_requests" USING btree ("org_unit_id","status","created_at");--> statement-breakpoint
CREATE INDEX "budget_requests_requester" ON "budget_requests" USING btree ("requested_by_subject","created_at");