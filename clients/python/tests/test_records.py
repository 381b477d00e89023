"""Richer records: outcomes, exit codes and meta on changes, imports with their own times,
attributes, updates with a compare-and-set, and measurements of any JSON."""

from __future__ import annotations

import threading
import unittest
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional

from runstate import (
    RevisionConflictError,
    RunstateClient,
    RunstateError,
    RunstateUnavailableError,
    TransitionAccepted,
)

from .support import ADMIN_TOKEN, FlakyProxy, ServiceTest, server_run, service, unique_project


def points(run_id: str) -> List[Dict[str, Any]]:
    data = service().gql(
        """query($id: ID!) { run(id: $id) { measurements(first: 500) {
          edges { node { name value data step } } } } }""",
        {"id": run_id},
    )
    return [edge["node"] for edge in data["run"]["measurements"]["edges"]]


class RecordsTest(ServiceTest):
    client_options = {"measurement_flush_interval": 0.05}

    def test_a_change_records_its_outcome_exit_code_and_meta_and_the_run_keeps_the_last(self) -> None:
        run = self.client.create_run(unique_project("records"))
        started = run.start(meta={"host": "node-7"})
        self.assertEqual((started.outcome, started.exit_code), (None, None))
        failed = run.fail("golden file differs", outcome="DIFF", exit_code=64, meta={"diff": "out.txt"})
        self.assertEqual((failed.status, failed.outcome, failed.exit_code), ("FAILED", "DIFF", 64))
        self.assertEqual((run.current.outcome, run.current.exit_code), ("DIFF", 64))

        changes = run.history()
        self.assertEqual(
            [(c.to, c.outcome, c.exit_code, c.meta, c.attempt) for c in changes],
            [
                ("CREATED", None, None, None, 1),
                ("RUNNING", None, None, {"host": "node-7"}, 1),
                ("FAILED", "DIFF", 64, {"diff": "out.txt"}, 1),
            ],
        )

        # A success with exit code 0; a native name's own outcome (Canary's diffed) is recorded.
        ok = self.client.create_run(unique_project("records"))
        ok.start()
        self.assertEqual((ok.succeed(outcome="PASS", exit_code=0).outcome, ok.current.exit_code), ("PASS", 0))
        canary = self.client.create_run(unique_project("records"), dialect="CANARY")
        canary.transition("running")
        done = canary.transition("diffed", exit_code=1)
        self.assertEqual((done.status, done.outcome, done.exit_code), ("FAILED", "DIFF", 1))
        result = self.client.create_run(unique_project("records")).try_transition(
            to="SKIPPED", outcome="NOT_RUN", meta={"why": "cached"}
        )
        assert isinstance(result, TransitionAccepted)
        self.assertEqual(result.run.outcome, "NOT_RUN")

    def test_each_change_carries_its_attempt_and_a_retry_clears_the_outcome(self) -> None:
        run = self.client.create_run(unique_project("records"), max_retries=1)
        run.start()
        retried = run.fail("out of memory", outcome="OOM", exit_code=137)
        # The failure became a retry: the run's outcome is cleared, its attempt is 2.
        self.assertEqual((retried.status, retried.attempt, retried.outcome, retried.exit_code),
                         ("RETRYING", 2, None, None))
        run.start()
        run.succeed(outcome="PASS", exit_code=0)
        # The failure is recorded as the retry it became, with what it reported.
        self.assertEqual(
            [(c.to, c.attempt, c.outcome, c.exit_code) for c in run.history()],
            [
                ("CREATED", 1, None, None),
                ("RUNNING", 1, None, None),
                ("RETRYING", 2, "OOM", 137),
                ("RUNNING", 2, None, None),
                ("SUCCEEDED", 2, "PASS", 0),
            ],
        )
        self.assertEqual((run.current.outcome, run.current.exit_code), ("PASS", 0))

    def test_an_import_keeps_its_own_times_and_attributes(self) -> None:
        created = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=2)
        run = self.client.create_run(
            unique_project("import"),
            name="imported",
            created_at=created,
            attributes={"source": "perceval", "job": {"id": 17}},
        )
        self.assertEqual(run.current.created_at, created)
        self.assertEqual(run.current.attributes, {"source": "perceval", "job": {"id": 17}})
        run.start(at=created + timedelta(minutes=1))
        # ISO text works as well as a datetime.
        run.succeed(at=(created + timedelta(minutes=31)).isoformat().replace("+00:00", "Z"))
        self.assertEqual(run.current.started_at, created + timedelta(minutes=1))
        self.assertEqual(run.current.finished_at, created + timedelta(minutes=31))
        self.assertEqual(server_run(run.id, "duration")["duration"], 1800)
        self.assertEqual([c.at for c in run.history()],
                         [created, created + timedelta(minutes=1), created + timedelta(minutes=31)])
        # Not before the run's last change: refused, nothing changes.
        late = self.client.create_run(unique_project("import"), created_at=created)
        with self.assertRaises(RunstateError) as refused:
            late.start(at=created - timedelta(minutes=1))
        self.assertEqual(refused.exception.code, "BAD_USER_INPUT")
        self.assertEqual(server_run(late.id, "status")["status"], "CREATED")

    def test_update_replaces_name_tags_and_meta_and_merges_attributes(self) -> None:
        run = self.client.create_run(
            unique_project("update"), name="draft", tags=["a"], meta={"lr": 0.1}, attributes={"keep": 1, "drop": 2}
        )
        before = run.current.revision
        updated = run.update(name="final", tags=["b", "c"], meta={"lr": 0.2}, attributes={"drop": None, "new": [1, "x"]})
        self.assertEqual((updated.name, updated.tags), ("final", ["b", "c"]))
        self.assertEqual(updated.attributes, {"keep": 1, "new": [1, "x"]})
        self.assertEqual(updated.revision, before + 1)
        self.assertIs(run.current, updated)
        self.assertEqual(server_run(run.id, "meta")["meta"], {"lr": 0.2})
        # Left out: left alone; None clears the name and meta.
        cleared = run.update(name=None, meta=None)
        self.assertEqual((cleared.name, cleared.tags, cleared.attributes), (None, ["b", "c"], {"keep": 1, "new": [1, "x"]}))
        self.assertIsNone(server_run(run.id, "meta")["meta"])
        with self.assertRaises(ValueError):
            run.update()

    def test_update_with_a_stale_revision_raises_revision_conflict_and_writes_nothing(self) -> None:
        run = self.client.create_run(unique_project("update"), attributes={"v": 1})
        stale = run.current.revision
        run.update(attributes={"v": 2}, expected_revision=stale)
        with self.assertRaises(RevisionConflictError) as conflict:
            run.update(attributes={"v": 3}, expected_revision=stale)
        error = conflict.exception
        self.assertIsInstance(error, RunstateError)
        self.assertEqual(error.code, "REVISION_CONFLICT")
        self.assertEqual((error.expected_revision, error.actual_revision), (stale, stale + 1))
        self.assertEqual(server_run(run.id, "attributes revision"), {"attributes": {"v": 2}, "revision": stale + 1})

    def test_two_concurrent_updates_at_the_same_revision_exactly_one_wins(self) -> None:
        run = self.client.create_run(unique_project("race"), attributes={"owner": None})
        for i in range(5):
            revision = self.client.run(run.id).current.revision
            # Two workers, each with its own client and handle, read the same revision.
            barrier = threading.Barrier(2)
            outcomes: Dict[str, Any] = {}

            def claim(who: str) -> None:
                with RunstateClient(self.service.url, ADMIN_TOKEN) as client:
                    handle = client.run(run.id)
                    barrier.wait(timeout=10)
                    try:
                        outcomes[who] = handle.update(attributes={"owner": who}, expected_revision=revision)
                    except RevisionConflictError as error:
                        outcomes[who] = error

            threads = [threading.Thread(target=claim, args=(who,)) for who in (f"a{i}", f"b{i}")]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=20)
            winners = [who for who, got in outcomes.items() if not isinstance(got, Exception)]
            losers = [got for got in outcomes.values() if isinstance(got, RevisionConflictError)]
            self.assertEqual(len(winners), 1, outcomes)
            self.assertEqual(len(losers), 1, outcomes)
            self.assertEqual((losers[0].expected_revision, losers[0].actual_revision), (revision, revision + 1))
            after = server_run(run.id, "attributes revision")
            self.assertEqual(after, {"attributes": {"owner": winners[0]}, "revision": revision + 1})

    def test_an_update_with_expected_revision_is_not_sent_twice_after_a_lost_answer(self) -> None:
        proxy = FlakyProxy(self.service.url)
        client = RunstateClient(proxy.url, ADMIN_TOKEN)
        try:
            run = client.create_run(unique_project("update"))
            proxy.lose_next_answers(1)
            with self.assertRaises(RunstateUnavailableError):
                run.update(attributes={"a": 1}, expected_revision=run.current.revision)
            self.assertEqual(len(proxy.bodies("updateRun")), 1)
            # Without a compare-and-set it is sent again, and the same values change nothing more.
            proxy.lose_next_answers(1)
            self.assertEqual(run.update(attributes={"a": 2}).attributes, {"a": 2})
            self.assertEqual(len(proxy.bodies("updateRun")), 3)
        finally:
            client.close()
            proxy.close()

    def test_measure_takes_any_json_a_number_as_value_anything_else_as_data(self) -> None:
        run = self.client.create_run(unique_project("measure"))
        stats: Dict[str, Any] = {"mean": 0.5, "tags": ["a"]}
        futures = [
            run.measure("loss", 1, step=1),  # an int is a number
            run.measure("loss", 0.5, step=2),
            run.measure("mode", "warmup", step=1),
            run.measure("ok", True, step=1),  # a bool is not a number
            run.measure("stats", stats, step=1),
            run.measure("shape", (3, 224), step=1),
        ]
        stats["mean"] = 9.9  # changed after measure(): the point was taken as it was
        for future in futures:
            self.assertIsNone(future.result(timeout=10))
        got = sorted(((p["name"], p["step"]), p["value"], p["data"]) for p in points(run.id))
        self.assertEqual(
            got,
            [
                (("loss", 1), 1.0, None),
                (("loss", 2), 0.5, None),
                (("mode", 1), None, "warmup"),
                (("ok", 1), None, True),
                (("shape", 1), None, [3, 224]),
                (("stats", 1), None, {"mean": 0.5, "tags": ["a"]}),
            ],
        )
        with self.assertRaises(ValueError):
            run.measure("nothing", None)
        with self.assertRaises(TypeError):
            run.measure("odd", object())
        run.flush()


if __name__ == "__main__":
    unittest.main()
