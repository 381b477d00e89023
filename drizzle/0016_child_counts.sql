CREATE TABLE "run_child_counts" (
	"parent_id" uuid NOT NULL,
	"status" "run_status" NOT NULL,
	"n" bigint NOT NULL,
	CONSTRAINT "run_child_counts_parent_id_status_pk" PRIMARY KEY("parent_id","status")
);
--> statement-breakpoint
-- Steps per status as of the counts' position: what runs holds now, less what the change log after
-- the position moved (reads add those rows back). The position row is locked so no fold moves it
-- meanwhile. An older instance folding after this would advance the position without these
-- counts: stop older instances before this migration runs (start-up applies it).
SELECT 1 FROM "run_counts_position" WHERE "id" = 1 FOR UPDATE;--> statement-breakpoint
INSERT INTO "run_child_counts" ("parent_id", "status", "n")
SELECT "parent_id", "status", sum("n") FROM (
  SELECT "parent_id", "status", count(*) AS "n" FROM "runs"
  WHERE "parent_id" IS NOT NULL GROUP BY "parent_id", "status"
  UNION ALL
  SELECT c."parent_id", c."to_status", -1 FROM "status_changes" c, "run_counts_position" p
  WHERE p."id" = 1 AND c."id" > p."through_id" AND c."parent_id" IS NOT NULL
  UNION ALL
  SELECT c."parent_id", c."from_status", 1 FROM "status_changes" c, "run_counts_position" p
  WHERE p."id" = 1 AND c."id" > p."through_id" AND c."parent_id" IS NOT NULL
    AND c."from_status" IS NOT NULL
) AS t
GROUP BY "parent_id", "status" HAVING sum("n") <> 0;
