ALTER TABLE "runs" ADD COLUMN "followers" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
-- Runs that existed before: count what already follows them.
UPDATE "runs" AS r SET "followers" = f.n
FROM (
  SELECT id, count(*)::int AS n FROM (
    SELECT "upstream_id" AS id FROM "run_dependencies"
    UNION ALL
    SELECT "ref_id" AS id FROM "run_event_triggers"
  ) AS followed GROUP BY id
) AS f
WHERE r."id" = f.id;
