CREATE TABLE "outbox_deliveries" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"event_id" uuid NOT NULL,
	"attempt" integer NOT NULL,
	"outcome" text NOT NULL,
	"http_status" integer,
	"error" text,
	"started_at" timestamp with time zone NOT NULL,
	"duration_ms" integer NOT NULL,
	CONSTRAINT "outbox_deliveries_event_attempt" UNIQUE("event_id","attempt")
);
--> statement-breakpoint
CREATE TABLE "outbox_events" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"topic" text NOT NULL,
	"kind" text NOT NULL,
	"dedupe_key" text NOT NULL,
	"payload" jsonb NOT NULL,
	"destination" jsonb NOT NULL,
	"job_id" uuid,
	"org_unit_id" uuid,
	"status" text DEFAULT 'PENDING' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"max_attempts" integer NOT NULL,
	"next_attempt_at" timestamp with time zone,
	"delivered_at" timestamp with time zone,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "outbox_events_topic_dedupe" UNIQUE("topic","dedupe_key"),
	CONSTRAINT "outbox_events_status" CHECK ("outbox_events"."status" in ('PENDING', 'DELIVERED', 'DEAD'))
);
--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "callback" jsonb;--> statement-breakpoint
ALTER TABLE "service_tokens" ADD COLUMN "callback_secret_ciphertext" text;--> statement-breakpoint
ALTER TABLE "service_tokens" ADD COLUMN "callback_secret_rotated_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "outbox_deliveries" ADD CONSTRAINT "outbox_deliveries_event_id_outbox_events_id_fk" FOREIGN KEY ("event_id") REFERENCES "public"."outbox_events"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "outbox_events" ADD CONSTRAINT "outbox_events_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "outbox_events" ADD CONSTRAINT "outbox_events_org_unit_id_org_units_id_fk" FOREIGN KEY ("org_unit_id") REFERENCES "public"."org_units"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "outbox_events_due" ON "outbox_events" USING btree ("next_attempt_at") WHERE status = 'PENDING';--> statement-breakpoint
CREATE INDEX "outbox_events_undelivered" ON "outbox_events" USING btree ("topic","created_at") WHERE status <> 'DELIVERED';--> statement-breakpoint
CREATE INDEX "outbox_events_job" ON "outbox_events" USING btree ("job_id");