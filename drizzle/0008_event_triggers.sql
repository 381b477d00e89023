CREATE TABLE "run_event_triggers" (
	"run_id" uuid NOT NULL,
	"ref_id" uuid NOT NULL,
	"kinds" text[] NOT NULL,
	"statuses" text[] NOT NULL,
	CONSTRAINT "run_event_triggers_run_id_ref_id_pk" PRIMARY KEY("run_id","ref_id")
);
--> statement-breakpoint
ALTER TABLE "run_event_triggers" ADD CONSTRAINT "run_event_triggers_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "run_event_triggers" ADD CONSTRAINT "run_event_triggers_ref_id_runs_id_fk" FOREIGN KEY ("ref_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "run_event_triggers_ref_idx" ON "run_event_triggers" USING btree ("ref_id");