CREATE TYPE "public"."trigger_policy" AS ENUM('ALL_SUCCEEDED', 'ALL_FAILED', 'ALL_DONE', 'ONE_SUCCEEDED', 'ONE_FAILED', 'ONE_DONE');--> statement-breakpoint
CREATE TABLE "run_dependencies" (
	"run_id" uuid NOT NULL,
	"upstream_id" uuid NOT NULL,
	CONSTRAINT "run_dependencies_run_id_upstream_id_pk" PRIMARY KEY("run_id","upstream_id")
);
--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "trigger" "trigger_policy";--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "skip_on_upstream_skip" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "blocked_reason" text;--> statement-breakpoint
ALTER TABLE "run_dependencies" ADD CONSTRAINT "run_dependencies_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "run_dependencies" ADD CONSTRAINT "run_dependencies_upstream_id_runs_id_fk" FOREIGN KEY ("upstream_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "run_dependencies_upstream_idx" ON "run_dependencies" USING btree ("upstream_id");