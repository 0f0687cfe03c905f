ALTER TYPE "public"."job_kind" ADD VALUE 'LIPSYNC';--> statement-breakpoint
ALTER TYPE "public"."job_kind" ADD VALUE 'TTS';--> statement-breakpoint
ALTER TYPE "public"."job_kind" ADD VALUE 'TRANSLATION_PROOFREAD';--> statement-breakpoint
ALTER TYPE "public"."job_kind" ADD VALUE 'AVATAR_CREATION';--> statement-breakpoint
ALTER TYPE "public"."job_kind" ADD VALUE 'VIDEO_BATCH';--> statement-breakpoint
ALTER TYPE "public"."job_kind" ADD VALUE 'VIDEO_TRANSLATION_BATCH';--> statement-breakpoint
ALTER TYPE "public"."job_kind" ADD VALUE 'LIPSYNC_BATCH';--> statement-breakpoint
ALTER TABLE "job_items" ADD COLUMN "create_answer" jsonb;