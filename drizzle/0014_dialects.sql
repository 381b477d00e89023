CREATE TYPE "public"."dialect" AS ENUM('RUNSTATE', 'POLYAXON', 'PERCEVAL', 'PARSL', 'CANARY');--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "status_reason" text;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "outcome" text;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "dialect" "dialect" DEFAULT 'RUNSTATE' NOT NULL;--> statement-breakpoint
ALTER TABLE "status_changes" ADD COLUMN "outcome" text;