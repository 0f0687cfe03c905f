CREATE TABLE "live_listeners" (
	"process_id" uuid PRIMARY KEY NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
