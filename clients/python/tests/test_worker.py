"""A worker's day: create, start, progress, measurements in batches, success; typed refusals."""

from __future__ import annotations

import subprocess
import sys
import unittest
from pathlib import Path
from concurrent.futures import Future

import runstate
from runstate import (
    IllegalTransition,
    RunstateClient,
    RunstateError,
    TransitionAccepted,
    TransitionConflict,
    TransitionRefusedError,
)

from .support import (
    ADMIN_TOKEN,
    FlakyProxy,
    history,
    measurements,
    server_run,
    service,
    unique_project,
)


class WorkerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.service = service()
        cls.client = RunstateClient(cls.service.url, ADMIN_TOKEN)
        # Through a proxy that records what goes over the wire (nothing is lost here).
        cls.proxy = FlakyProxy(cls.service.url)
        cls.watched = RunstateClient(cls.proxy.url, ADMIN_TOKEN, measurement_flush_interval=0.3)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.client.close()
        cls.watched.close()
        cls.proxy.close()

    def test_reports_a_run_from_start_to_success(self) -> None:
        run = self.watched.create_run(unique_project("worker"), name="train", tags=["gpu"], meta={"lr": 0.1})
        self.assertEqual(run.current.status, "CREATED")
        self.assertEqual(run.current.name, "train")
        self.assertEqual(run.current.tags, ["gpu"])

        started = run.start()
        self.assertEqual(started.status, "RUNNING")
        self.assertIsNotNone(started.started_at)
        reported = run.progress(0.5, "epoch 1")
        self.assertEqual((reported.progress, reported.phase), (0.5, "epoch 1"))
        self.assertEqual(run.current.progress, 0.5)
        self.assertEqual(run.progress(0.6).phase, "epoch 1")  # the phase stays when not given

        points = [run.measure("loss", 0.9, 1), run.measure("loss", 0.5, 2), run.measure("acc", 0.7, step=2)]
        self.assertTrue(all(isinstance(p, Future) for p in points))
        for point in points:
            self.assertIsNone(point.result(timeout=10))
        # Gathered during the flush interval and sent in one request, with an idempotency key.
        batches = [
            body["variables"]["input"]
            for body in self.proxy.bodies("recordMeasurements")
            if body["variables"]["input"]["runId"] == run.id
        ]
        self.assertEqual(len(batches), 1, batches)
        self.assertEqual([(m["name"], m["value"], m["step"]) for m in batches[0]["measurements"]],
                         [("loss", 0.9, 1), ("loss", 0.5, 2), ("acc", 0.7, 2)])
        self.assertTrue(batches[0]["idempotencyKey"])

        done = run.succeed("converged")
        self.assertEqual((done.status, done.is_done), ("SUCCEEDED", True))
        self.assertIsNotNone(done.finished_at)
        self.assertEqual([c["to"] for c in history(run.id)], ["CREATED", "RUNNING", "SUCCEEDED"])
        self.assertEqual(
            sorted((m["name"], m["value"], m["step"]) for m in measurements(run.id)),
            [("acc", 0.7, 2), ("loss", 0.5, 2), ("loss", 0.9, 1)],
        )
        # The client's own reading of the history, with cursors and messages.
        changes = run.history()
        self.assertEqual([(c.from_, c.to) for c in changes],
                         [(None, "CREATED"), ("CREATED", "RUNNING"), ("RUNNING", "SUCCEEDED")])
        self.assertEqual(changes[-1].message, "converged")
        self.assertTrue(all(c.cursor for c in changes))

    def test_points_gathered_before_succeed_are_sent_first(self) -> None:
        slow = RunstateClient(self.service.url, ADMIN_TOKEN, measurement_flush_interval=60)
        try:
            run = slow.create_run(unique_project("worker"))
            run.start()
            point = run.measure("loss", 0.25)
            self.assertFalse(point.done())  # waits for its batch
            run.succeed()
            self.assertTrue(point.done())
            self.assertEqual([(m["name"], m["value"]) for m in measurements(run.id)], [("loss", 0.25)])
        finally:
            slow.close()

    def test_close_sends_what_was_gathered(self) -> None:
        slow = RunstateClient(self.service.url, ADMIN_TOKEN, measurement_flush_interval=60)
        run = slow.create_run(unique_project("worker"))
        run.measure("loss", 1.5, 3)
        slow.close()
        self.assertEqual(measurements(run.id), [{"name": "loss", "value": 1.5, "step": 3}])

    def test_a_worker_that_exits_without_close_still_sends_its_points(self) -> None:
        script = (
            "import sys\n"
            "from runstate import RunstateClient\n"
            "client = RunstateClient(sys.argv[1], sys.argv[2], measurement_flush_interval=60)\n"
            "run = client.create_run(sys.argv[3])\n"
            "run.measure('loss', 7.0, 1)\n"
            "print(run.id)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script, self.service.url, ADMIN_TOKEN, unique_project("exit")],
            cwd=Path(__file__).resolve().parents[1],
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(measurements(done.stdout.strip()), [{"name": "loss", "value": 7.0, "step": 1}])

    def test_a_refused_change_raises_the_servers_typed_answer(self) -> None:
        run = self.client.create_run(unique_project("refused"))
        run.start()
        run.succeed()
        with self.assertRaises(TransitionRefusedError) as caught:
            run.fail("too late")
        error = caught.exception
        self.assertEqual(error.kind, "IllegalTransition")
        self.assertIsInstance(error.result, IllegalTransition)
        self.assertEqual((error.result.from_, error.result.to), ("SUCCEEDED", "FAILED"))
        self.assertEqual(error.result.run_id, run.id)
        self.assertEqual(error.details["from"], "SUCCEEDED")
        self.assertIn("SUCCEEDED", str(error))
        self.assertIsInstance(error, runstate.RunstateException)
        # Nothing was written, and the handle still shows the run as it is.
        self.assertEqual([c["to"] for c in history(run.id)], ["CREATED", "RUNNING", "SUCCEEDED"])
        self.assertEqual(run.current.status, "SUCCEEDED")

    def test_the_value_form_returns_the_typed_result_instead(self) -> None:
        run = self.client.create_run(unique_project("value"))
        queued = run.try_transition(to="QUEUED")
        self.assertIsInstance(queued, TransitionAccepted)
        self.assertTrue(queued.accepted)
        self.assertEqual(queued.run.status, "QUEUED")
        self.assertEqual(run.current.status, "QUEUED")

        refused = run.try_transition(to="SUCCEEDED")  # QUEUED -> SUCCEEDED is not a legal move
        self.assertIsInstance(refused, IllegalTransition)
        self.assertFalse(refused.accepted)
        self.assertEqual((refused.from_, refused.to), ("QUEUED", "SUCCEEDED"))
        self.assertIn("SCHEDULED", refused.allowed)
        self.assertNotIn("SUCCEEDED", refused.allowed)
        self.assertEqual(server_run(run.id)["status"], "QUEUED")
        with self.assertRaises(ValueError):
            run.try_transition("running", to="RUNNING")

    def test_a_stale_attempt_is_refused_as_a_conflict(self) -> None:
        run = self.client.create_run(unique_project("stale"), dialect="PARSL", max_retries=1)
        stale = self.client.run(run.id)  # a second worker's handle on attempt 1
        run.transition("launched")
        retried = run.transition("fail_retryable")
        self.assertEqual((retried.status, retried.attempt), ("RETRYING", 2))

        with self.assertRaises(TransitionRefusedError) as caught:
            stale.transition("exec_done")
        self.assertEqual(caught.exception.kind, "TransitionConflict")
        self.assertIsInstance(caught.exception.result, TransitionConflict)
        self.assertEqual(caught.exception.result.actual_attempt, 2)
        self.assertEqual(server_run(run.id)["status"], "RETRYING")
        conflict = stale.try_transition("exec_done")
        self.assertIsInstance(conflict, TransitionConflict)

    def test_an_unknown_native_name_is_bad_input_naming_the_field_and_the_names(self) -> None:
        run = self.client.create_run(unique_project("unknown"), dialect="parsl")
        with self.assertRaises(RunstateError) as caught:
            run.transition("finished")
        error = caught.exception
        self.assertEqual(error.code, "BAD_USER_INPUT")
        self.assertEqual(error.field, "input.native")
        self.assertIn("exec_done", error.allowed or [])
        self.assertEqual([c["to"] for c in history(run.id)], ["CREATED"])

    def test_bad_input_and_a_bad_token_are_errors_with_their_codes(self) -> None:
        with self.assertRaises(RunstateError) as caught:
            self.client.create_run("p", heartbeat_timeout=0)
        self.assertEqual((caught.exception.code, caught.exception.field), ("BAD_USER_INPUT", "input.heartbeatTimeout"))
        with RunstateClient(self.service.url, "not-a-token") as stranger:
            with self.assertRaises(RunstateError) as caught:
                stranger.create_run("p")
        self.assertEqual(caught.exception.code, "UNAUTHENTICATED")
        with self.assertRaises(RunstateError) as caught:
            self.client.run("8f7e0000-0000-4000-8000-000000000000")
        self.assertEqual(caught.exception.code, "NOT_FOUND")

    def test_list_runs_pages_and_counts(self) -> None:
        project = unique_project("list")
        made = [self.client.create_run(project, name=f"r{i}") for i in range(3)]
        first = self.client.list_runs({"project": project}, first=2, total_count=True)
        self.assertEqual(first.total_count, 3)
        self.assertTrue(first.has_next_page)
        self.assertEqual([r.name for r in first.runs], ["r2", "r1"])  # newest first
        rest = self.client.list_runs({"project": project}, first=2, after=first.end_cursor)
        self.assertEqual([r.name for r in rest.runs], ["r0"])
        self.assertFalse(rest.has_next_page)
        self.assertIsNone(rest.total_count)
        oldest_first = self.client.iter_runs({"project": project}, page_size=1,
                                             order_by={"field": "CREATED_AT", "direction": "ASC"})
        self.assertEqual([r.id for r in oldest_first], [r.id for r in made])
        made[0].start()
        running = self.client.list_runs({"project": project, "statuses": ["running"]})
        self.assertEqual([r.id for r in running.runs], [made[0].id])


if __name__ == "__main__":
    unittest.main()
