ALTER TABLE "measurements" ALTER COLUMN "value" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "measurements" ADD COLUMN "data" jsonb;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "exit_code" integer;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "attributes" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "status_changes" ADD COLUMN "exit_code" integer;--> statement-breakpoint
ALTER TABLE "status_changes" ADD COLUMN "meta" jsonb;--> statement-breakpoint
ALTER TABLE "status_changes" ADD COLUMN "attempt" integer DEFAULT 1 NOT NULL;--> statement-breakpoint
CREATE INDEX "runs_meta_gin_idx" ON "runs" USING gin ("meta" jsonb_path_ops);--> statement-breakpoint
CREATE INDEX "runs_attributes_gin_idx" ON "runs" USING gin ("attributes" jsonb_path_ops);--> statement-breakpoint
ALTER TABLE "measurements" ADD CONSTRAINT "measurements_value_or_data" CHECK (("measurements"."value" IS NULL) <> ("measurements"."data" IS NULL));--> statement-breakpoint
-- Each history row's attempt: 1, plus one for every RETRYING row up to and including it (a
-- RETRYING row starts the next attempt). Only rows past a retry need a write.
UPDATE "status_changes" AS c SET "attempt" = s."attempt"
FROM (
  SELECT "id", 1 + count(*) FILTER (WHERE "to_status" = 'RETRYING')
    OVER (PARTITION BY "run_id" ORDER BY "version") AS "attempt"
  FROM "status_changes"
) AS s
WHERE c."id" = s."id" AND s."attempt" <> 1;
