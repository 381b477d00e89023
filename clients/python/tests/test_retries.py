"""Requests whose answer was lost are retried with the same body, so the same idempotency key:
each change is recorded once."""

from __future__ import annotations

import time
import unittest

from runstate import RetryPolicy, RunstateClient, RunstateError, RunstateUnavailableError

from .support import ADMIN_TOKEN, FlakyProxy, history, measurements, service, unique_project

UNAVAILABLE = {"errors": [{"message": "the database is away", "extensions": {"code": "SERVICE_UNAVAILABLE"}}]}


class RetriesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.service = service()
        cls.proxy = FlakyProxy(cls.service.url)
        cls.flaky = RunstateClient(
            cls.proxy.url,
            ADMIN_TOKEN,
            retry=RetryPolicy(base_delay=0.02, max_delay=0.2),
            measurement_flush_interval=0.02,
        )

    @classmethod
    def tearDownClass(cls) -> None:
        cls.flaky.close()
        cls.proxy.close()

    def setUp(self) -> None:
        self.proxy.lose_next_answers(0)
        self.proxy.answer_next(0, 200, {})

    def inputs(self, mutation: str, **match: str) -> list:
        """The `input` of every request of this mutation whose input has these values."""
        found = (body["variables"].get("input") or {} for body in self.proxy.bodies(mutation))
        return [i for i in found if all(i.get(k) == v for k, v in match.items())]

    def test_each_change_whose_answer_was_lost_is_made_once(self) -> None:
        project = unique_project("lost")
        lost = self.proxy.lost
        self.proxy.lose_next_answers(1)
        run = self.flaky.create_run(project)
        self.proxy.lose_next_answers(1)
        self.assertEqual(run.start().status, "RUNNING")
        self.proxy.lose_next_answers(1)
        run.measure("loss", 1)
        run.measure("loss", 2).result(timeout=10)
        self.proxy.lose_next_answers(1)
        self.assertEqual(run.succeed().status, "SUCCEEDED")
        self.assertEqual(self.proxy.lost - lost, 4)

        self.assertEqual([r.id for r in self.flaky.iter_runs({"project": project})], [run.id])
        self.assertEqual([c["to"] for c in history(run.id)], ["CREATED", "RUNNING", "SUCCEEDED"])
        self.assertEqual(sorted(m["value"] for m in measurements(run.id)), [1.0, 2.0])

        # What went over the wire: each try of a change carried the same key as the first.
        creates = self.inputs("createRun", project=project)
        self.assertEqual(len(creates), 2)
        self.assertEqual(creates[0]["idempotencyKey"], creates[1]["idempotencyKey"])
        transitions = self.inputs("transitionRun", id=run.id)
        self.assertEqual([t["to"] for t in transitions], ["RUNNING", "RUNNING", "SUCCEEDED", "SUCCEEDED"])
        self.assertEqual(transitions[0]["idempotencyKey"], transitions[1]["idempotencyKey"])
        self.assertEqual(transitions[2]["idempotencyKey"], transitions[3]["idempotencyKey"])
        self.assertNotEqual(transitions[0]["idempotencyKey"], transitions[2]["idempotencyKey"])
        self.assertTrue(all(t["attempt"] == 1 for t in transitions))
        batches = self.inputs("recordMeasurements", runId=run.id)
        self.assertEqual(len(batches), 2)
        self.assertEqual(batches[0], batches[1])

    def test_a_native_transition_whose_answer_was_lost_is_made_once(self) -> None:
        run = self.flaky.create_run(unique_project("lost"), dialect="PARSL")
        self.proxy.lose_next_answers(1)
        self.assertEqual(run.transition("launched").native_status, "launched")
        self.proxy.lose_next_answers(1)
        self.assertEqual(run.transition("exec_done").native_status, "exec_done")
        self.assertEqual([c["to"] for c in history(run.id)], ["CREATED", "SCHEDULED", "SUCCEEDED"])
        tries = self.inputs("transitionRun", id=run.id)
        self.assertEqual([t["native"] for t in tries], ["launched", "launched", "exec_done", "exec_done"])
        self.assertEqual(len({t["idempotencyKey"] for t in tries}), 2)

    def test_a_stop_whose_answer_was_lost_answers_the_stopped_run(self) -> None:
        run = self.flaky.create_run(unique_project("stop"))
        self.proxy.lose_next_answers(1)
        self.assertEqual(run.stop("no longer needed").status, "STOPPED")
        self.assertEqual([c["to"] for c in history(run.id)], ["CREATED", "STOPPED"])

    def test_service_unavailable_is_retried_with_the_same_key(self) -> None:
        run = self.flaky.create_run(unique_project("unavailable"))
        answered = self.proxy.answered
        self.proxy.answer_next(2, 503, UNAVAILABLE, {"retry-after": "0"})
        self.assertEqual(run.start().status, "RUNNING")
        self.assertEqual(self.proxy.answered - answered, 2)
        tries = self.inputs("transitionRun", id=run.id)
        self.assertEqual(len(tries), 3)
        self.assertEqual(len({t["idempotencyKey"] for t in tries}), 1)

    def test_gives_up_after_its_attempts_with_an_unavailable_error(self) -> None:
        with RunstateClient(self.proxy.url, ADMIN_TOKEN,
                            retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05)) as client:
            answered = self.proxy.answered
            self.proxy.answer_next(3, 502, {"message": "bad gateway"})
            started = time.monotonic()
            with self.assertRaises(RunstateUnavailableError):
                client.create_run(unique_project("down"))
            self.assertLess(time.monotonic() - started, 5)
            self.assertEqual(self.proxy.answered - answered, 3)  # the first try and 2 more

    def test_an_operation_not_safe_to_repeat_is_not_retried_after_a_lost_answer(self) -> None:
        project = unique_project("once")
        self.proxy.lose_next_answers(1)
        with self.assertRaises(RunstateUnavailableError) as caught:
            self.flaky.request('mutation($p: String!) { createRun(input: { project: $p }) { id } }', {"p": project})
        self.assertIn("may or may not have run", str(caught.exception))
        # It ran once; the client did not send it again.
        self.assertEqual(len(list(self.flaky.iter_runs({"project": project}))), 1)
        # But a 429 or a draining instance's 503 surely did not run it: retried.
        self.proxy.answer_next(1, 503, {"errors": [{"message": "draining", "extensions": {"code": "SERVER_STOPPING"}}]})
        data = self.flaky.request('mutation($p: String!) { createRun(input: { project: $p }) { id } }', {"p": project})
        self.assertTrue(data["createRun"]["id"])
        # And SERVICE_UNAVAILABLE may have run it: not retried, said so.
        self.proxy.answer_next(1, 503, UNAVAILABLE)
        with self.assertRaises(RunstateUnavailableError):
            self.flaky.request('mutation($p: String!) { createRun(input: { project: $p }) { id } }', {"p": project})
        self.assertEqual(len(list(self.flaky.iter_runs({"project": project}))), 2)

    def test_an_answer_that_is_not_graphql_is_an_http_error(self) -> None:
        self.proxy.answer_next(1, 404, {"message": "no such route"})
        with self.assertRaises(RunstateError) as caught:
            self.flaky.create_run(unique_project("404"))
        self.assertEqual((caught.exception.code, caught.exception.extensions["status"]), ("HTTP_ERROR", 404))


if __name__ == "__main__":
    unittest.main()
