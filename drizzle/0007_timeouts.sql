ALTER TABLE "runs" ADD COLUMN "heartbeat_timeout" integer;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "queue_timeout" integer;--> statement-breakpoint
CREATE INDEX "runs_heartbeat_watch_idx" ON "runs" USING btree ("updated_at") WHERE "runs"."heartbeat_timeout" IS NOT NULL AND "runs"."status" = ANY('{SCHEDULED,STARTING,INITIALIZING,RUNNING,PROCESSING}'::run_status[]);--> statement-breakpoint
CREATE INDEX "runs_queue_watch_idx" ON "runs" USING btree ("updated_at") WHERE "runs"."queue_timeout" IS NOT NULL AND "runs"."status" = ANY('{CREATED,ON_SCHEDULE,COMPILED,QUEUED,RESUMING,RETRYING}'::run_status[]);--> statement-breakpoint
CREATE INDEX "runs_stopping_idx" ON "runs" USING btree ("updated_at") WHERE "runs"."status" = 'STOPPING';