CREATE TABLE "change_log_horizon" (
	"id" integer PRIMARY KEY DEFAULT 1 NOT NULL,
	"through_id" bigint NOT NULL
);
--> statement-breakpoint
INSERT INTO "change_log_horizon" ("id", "through_id") VALUES (1, 0);--> statement-breakpoint
CREATE TABLE "change_log_marks" (
	"at" timestamp (3) with time zone PRIMARY KEY NOT NULL,
	"through_id" bigint NOT NULL
);
--> statement-breakpoint
CREATE INDEX "runs_done_roots_finished_at_idx" ON "runs" USING btree ("finished_at") WHERE "runs"."parent_id" IS NULL AND "runs"."finished_at" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "runs_memoized_from_idx" ON "runs" USING btree ("memoized_from") WHERE "runs"."memoized_from" IS NOT NULL;--> statement-breakpoint
-- The first mark: changes before it count as old (their runs' own times decide), those after
-- it as written when their marks say.
INSERT INTO "change_log_marks" ("at", "through_id")
SELECT now(), coalesce(max("id"), 0) FROM "status_changes";--> statement-breakpoint
CREATE INDEX "measurement_keys_created_at_idx" ON "measurement_keys" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "transition_keys_created_at_idx" ON "transition_keys" USING btree ("created_at");--> statement-breakpoint
-- Measurements become a table partitioned by week of "at" (Monday 00:00 UTC to the next), so that
-- retention drops a week of points at once instead of deleting rows from a large table. The rows
-- are copied once, here. A DEFAULT partition takes points outside the weeks made (older ones);
-- runs/retention.ts makes the coming weeks ahead and drops the expired ones.
ALTER TABLE "measurements" RENAME TO "measurements_unpartitioned";--> statement-breakpoint
ALTER SEQUENCE "measurements_id_seq" RENAME TO "measurements_unpartitioned_id_seq";--> statement-breakpoint
ALTER INDEX "measurements_pkey" RENAME TO "measurements_unpartitioned_pkey";--> statement-breakpoint
ALTER INDEX "measurements_run_at_id_idx" RENAME TO "measurements_unpartitioned_run_at_id_idx";--> statement-breakpoint
ALTER INDEX "measurements_run_name_at_id_idx" RENAME TO "measurements_unpartitioned_run_name_at_id_idx";--> statement-breakpoint
ALTER TABLE "measurements_unpartitioned" RENAME CONSTRAINT "measurements_value_or_data" TO "measurements_unpartitioned_value_or_data";--> statement-breakpoint
ALTER TABLE "measurements_unpartitioned" RENAME CONSTRAINT "measurements_run_id_runs_id_fk" TO "measurements_unpartitioned_run_id_runs_id_fk";--> statement-breakpoint
CREATE TABLE "measurements" (
	"id" bigint GENERATED ALWAYS AS IDENTITY (sequence name "measurements_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1) NOT NULL,
	"run_id" uuid NOT NULL,
	"name" text NOT NULL,
	"value" double precision,
	"data" jsonb,
	"step" integer,
	"at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"tx_id" "xid8" DEFAULT pg_current_xact_id() NOT NULL,
	CONSTRAINT "measurements_id_at_pk" PRIMARY KEY("id","at"),
	CONSTRAINT "measurements_value_or_data" CHECK (("value" IS NULL) <> ("data" IS NULL))
) PARTITION BY RANGE ("at");--> statement-breakpoint
ALTER TABLE "measurements" ADD CONSTRAINT "measurements_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE TABLE "measurements_default" PARTITION OF "measurements" DEFAULT;--> statement-breakpoint
DO $$
DECLARE
  week timestamptz := date_trunc('week', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
BEGIN
  FOR i IN 0..2 LOOP
    EXECUTE format(
      'CREATE TABLE %I PARTITION OF "measurements" FOR VALUES FROM (%L) TO (%L)',
      'measurements_p' || to_char(week AT TIME ZONE 'UTC', 'YYYYMMDD'), week, week + interval '7 days');
    week := week + interval '7 days';
  END LOOP;
END $$;--> statement-breakpoint
CREATE INDEX "measurements_run_at_id_idx" ON "measurements" USING btree ("run_id","at","id");--> statement-breakpoint
CREATE INDEX "measurements_run_name_at_id_idx" ON "measurements" USING btree ("run_id","name","at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
INSERT INTO "measurements" ("id", "run_id", "name", "value", "data", "step", "at", "tx_id")
OVERRIDING SYSTEM VALUE
SELECT "id", "run_id", "name", "value", "data", "step", "at", "tx_id" FROM "measurements_unpartitioned";--> statement-breakpoint
SELECT setval(pg_get_serial_sequence('"measurements"', 'id'), coalesce(max("id"), 0) + 1, false) FROM "measurements";--> statement-breakpoint
DROP TABLE "measurements_unpartitioned";
