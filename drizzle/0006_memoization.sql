ALTER TABLE "runs" ADD COLUMN "cache_key" text;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "memoized_from" uuid;--> statement-breakpoint
ALTER TABLE "runs" ADD CONSTRAINT "runs_memoized_from_runs_id_fk" FOREIGN KEY ("memoized_from") REFERENCES "public"."runs"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "runs_project_cache_key_idx" ON "runs" USING btree ("project","cache_key") WHERE "runs"."cache_key" IS NOT NULL AND "runs"."status" = 'SUCCEEDED';