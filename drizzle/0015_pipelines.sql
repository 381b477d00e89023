CREATE TABLE "run_counts" (
	"project" text NOT NULL,
	"is_root" boolean NOT NULL,
	"status" "run_status" NOT NULL,
	"n" bigint NOT NULL,
	CONSTRAINT "run_counts_project_is_root_status_pk" PRIMARY KEY("project","is_root","status")
);
--> statement-breakpoint
CREATE TABLE "run_counts_position" (
	"id" integer PRIMARY KEY DEFAULT 1 NOT NULL,
	"through_id" bigint NOT NULL
);
--> statement-breakpoint
ALTER TABLE "run_dependencies" ADD COLUMN "when_statuses" text[];--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "parent_id" uuid;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "depth" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "op" text;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "rollup" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "scheduled_at" timestamp (3) with time zone;--> statement-breakpoint
ALTER TABLE "status_changes" ADD COLUMN "parent_id" uuid;--> statement-breakpoint
ALTER TABLE "runs" ADD CONSTRAINT "runs_parent_id_runs_id_fk" FOREIGN KEY ("parent_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "runs_parent_op_uq" ON "runs" USING btree ("parent_id","op") WHERE "runs"."op" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "runs_parent_created_at_id_idx" ON "runs" USING btree ("parent_id","created_at","id") WHERE "runs"."parent_id" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "runs_parent_status_idx" ON "runs" USING btree ("parent_id","status") WHERE "runs"."parent_id" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "runs_schedule_watch_idx" ON "runs" USING btree ("scheduled_at") WHERE "runs"."scheduled_at" IS NOT NULL AND "runs"."status" = 'ON_SCHEDULE';--> statement-breakpoint
CREATE INDEX "status_changes_parent_id_idx" ON "status_changes" USING btree ("parent_id","id") WHERE "status_changes"."parent_id" IS NOT NULL;--> statement-breakpoint
-- Counts as of the log's newest row: every run so far is a root (no run had a parent before).
-- A change of an older instance still committing while this runs would be counted wrong once:
-- apply this migration before older instances write again (start-up applies it).
INSERT INTO "run_counts" ("project", "is_root", "status", "n")
SELECT "project", true, "status", count(*) FROM "runs" GROUP BY "project", "status";--> statement-breakpoint
INSERT INTO "run_counts_position" ("id", "through_id")
SELECT 1, coalesce(max("id"), 0) FROM "status_changes";
