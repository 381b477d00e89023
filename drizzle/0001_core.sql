CREATE TYPE "public"."run_status" AS ENUM('CREATED', 'ON_SCHEDULE', 'COMPILED', 'QUEUED', 'SCHEDULED', 'STARTING', 'INITIALIZING', 'RUNNING', 'PROCESSING', 'WARNING', 'UNSCHEDULABLE', 'SUSPENDED', 'STOPPING', 'RESUMING', 'RETRYING', 'UNKNOWN', 'SUCCEEDED', 'FAILED', 'UPSTREAM_FAILED', 'STOPPED', 'SKIPPED');--> statement-breakpoint
CREATE TABLE "measurements" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "measurements_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"run_id" uuid NOT NULL,
	"name" text NOT NULL,
	"value" double precision NOT NULL,
	"step" integer,
	"at" timestamp (3) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "runs" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"project" text NOT NULL,
	"name" text,
	"tags" text[] DEFAULT '{}'::text[] NOT NULL,
	"meta" jsonb,
	"status" "run_status" DEFAULT 'CREATED' NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"progress" double precision,
	"phase" text,
	"stop_message" text,
	"idempotency_key" text,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp (3) with time zone,
	"finished_at" timestamp (3) with time zone,
	"heartbeat_at" timestamp (3) with time zone
);
--> statement-breakpoint
CREATE TABLE "status_changes" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "status_changes_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"tx_id" "xid8" DEFAULT pg_current_xact_id() NOT NULL,
	"run_id" uuid NOT NULL,
	"project" text NOT NULL,
	"from_status" "run_status",
	"to_status" "run_status" NOT NULL,
	"version" integer NOT NULL,
	"reason" text,
	"message" text,
	"at" timestamp (3) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "transition_keys" (
	"run_id" uuid NOT NULL,
	"key" text NOT NULL,
	"change_id" bigint,
	"outcome" jsonb NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "transition_keys_run_id_key_pk" PRIMARY KEY("run_id","key")
);
--> statement-breakpoint
ALTER TABLE "measurements" ADD CONSTRAINT "measurements_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "status_changes" ADD CONSTRAINT "status_changes_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "transition_keys" ADD CONSTRAINT "transition_keys_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "measurements_run_at_id_idx" ON "measurements" USING btree ("run_id","at","id");--> statement-breakpoint
CREATE INDEX "measurements_run_name_at_id_idx" ON "measurements" USING btree ("run_id","name","at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE UNIQUE INDEX "runs_project_idempotency_key_uq" ON "runs" USING btree ("project","idempotency_key") WHERE "runs"."idempotency_key" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "runs_created_at_id_idx" ON "runs" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "runs_updated_at_id_idx" ON "runs" USING btree ("updated_at","id");--> statement-breakpoint
CREATE INDEX "runs_project_created_at_id_idx" ON "runs" USING btree ("project","created_at","id");--> statement-breakpoint
CREATE INDEX "runs_project_updated_at_id_idx" ON "runs" USING btree ("project","updated_at","id");--> statement-breakpoint
CREATE INDEX "runs_status_created_at_id_idx" ON "runs" USING btree ("status","created_at","id");--> statement-breakpoint
CREATE INDEX "runs_project_status_created_at_id_idx" ON "runs" USING btree ("project","status","created_at","id");--> statement-breakpoint
CREATE INDEX "runs_tags_gin_idx" ON "runs" USING gin ("tags");--> statement-breakpoint
CREATE INDEX "runs_name_trgm_idx" ON "runs" USING gin ("name" gin_trgm_ops);--> statement-breakpoint
CREATE UNIQUE INDEX "status_changes_run_version_uq" ON "status_changes" USING btree ("run_id","version");--> statement-breakpoint
CREATE INDEX "status_changes_project_id_idx" ON "status_changes" USING btree ("project","id");--> statement-breakpoint
CREATE INDEX "status_changes_to_status_id_idx" ON "status_changes" USING btree ("to_status","id");