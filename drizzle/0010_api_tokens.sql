CREATE TYPE "public"."api_role" AS ENUM('READ', 'WRITE', 'ADMIN');--> statement-breakpoint
CREATE TABLE "api_tokens" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"role" "api_role" NOT NULL,
	"projects" text[],
	"secret_hash" text NOT NULL,
	"created_by" text,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp (3) with time zone
);
--> statement-breakpoint
ALTER TABLE "status_changes" ADD COLUMN "actor" text;--> statement-breakpoint
CREATE UNIQUE INDEX "api_tokens_secret_hash_uq" ON "api_tokens" USING btree ("secret_hash");--> statement-breakpoint
CREATE UNIQUE INDEX "api_tokens_live_name_uq" ON "api_tokens" USING btree ("name") WHERE revoked_at IS NULL;