"""Pipelines: a parent and its steps by op name, created in one call, safe to call again."""

from __future__ import annotations

import unittest

from runstate import RunstateClient, RunstateError

from .support import ADMIN_TOKEN, FlakyProxy, ServiceTest, history, server_run, service, unique_project


class PipelinesTest(ServiceTest):

    def runs_of(self, project: str) -> list:
        return list(self.client.iter_runs({"project": project}))

    def test_creates_a_pipeline_by_op_and_drives_it_to_the_end(self) -> None:
        project = unique_project("dag")
        pipeline = self.client.create_pipeline(
            project,
            [
                {"op": "prepare"},
                {"op": "train", "depends_on": ["ops.prepare"], "heartbeat_timeout": 60},
                # Runs once train is done, however it ended (Canary's `when`).
                {"op": "report", "dependencies": [{"ref": "ops.train", "when": ["succeeded", "failed"]}]},
            ],
            name="dag",
            rollup=True,
        )
        parent, steps = pipeline.parent, pipeline.steps
        self.assertEqual(list(steps), ["prepare", "train", "report"])
        self.assertTrue(parent.current.rollup)
        self.assertEqual({op: s.current.op for op, s in steps.items()}, {o: o for o in steps})
        self.assertEqual(self.client.run_by_op(parent.id, "train").id, steps["train"].id)
        with self.assertRaises(RunstateError) as caught:
            self.client.run_by_op(parent.id, "deploy")
        self.assertEqual(caught.exception.code, "NOT_FOUND")
        page = self.client.list_runs({"parent_id": parent.id}, total_count=True)
        self.assertEqual(page.total_count, 3)

        steps["prepare"].start()
        steps["prepare"].succeed()
        # train was waiting for prepare: the server queued it.
        self.assertEqual(steps["train"].refresh().status, "QUEUED")
        steps["train"].start()
        steps["train"].succeed()
        self.assertEqual(steps["report"].refresh().status, "QUEUED")
        self.assertEqual(server_run(parent.id)["status"], "RUNNING")
        steps["report"].start()
        steps["report"].succeed()
        self.assertEqual(server_run(parent.id)["status"], "SUCCEEDED")
        self.assertEqual([c["to"] for c in history(parent.id)], ["CREATED", "RUNNING", "SUCCEEDED"])

    def test_parent_step_creates_a_step_by_op(self) -> None:
        project = unique_project("step")
        parent = self.client.create_run(project)
        first = parent.step("fetch")
        second = parent.step("parse", depends_on=["ops.fetch"], name="parse it")
        self.assertEqual((second.current.op, second.current.project, second.current.name),
                         ("parse", project, "parse it"))
        self.assertEqual(self.client.run_by_op(parent.id, "fetch").id, first.id)
        with self.assertRaises(RunstateError) as caught:
            parent.step("load", depends_on=["ops.nothing"])
        self.assertEqual(caught.exception.code, "BAD_USER_INPUT")
        self.assertEqual(len(self.runs_of(project)), 3)

    def test_refuses_a_bad_step_list_before_writing_anything(self) -> None:
        project = unique_project("order")
        cases = [
            ([{"op": "a", "depends_on": ["ops.b"]}, {"op": "b"}], "steps[0].dependsOn[0]"),
            ([{"op": "a"}, {"op": "a"}], "steps[1].op"),
            ([{"op": "a", "dependencies": [{"ref": "ops.zzz"}]}], "steps[0].dependencies[0].ref"),
            ([{"op": "a", "events": [{"ref": "ops.a", "kinds": ["RUN_STATUS_DONE"]}]}], "steps[0].events[0].ref"),
            ([{"name": "no op"}], "steps[0].op"),
        ]
        for steps, field in cases:
            with self.subTest(field=field):
                with self.assertRaises(RunstateError) as caught:
                    self.client.create_pipeline(project, steps)
                self.assertEqual((caught.exception.code, caught.exception.field), ("BAD_USER_INPUT", field))
        self.assertEqual(self.runs_of(project), [])

    def test_the_same_call_again_answers_the_same_pipeline_and_lost_answers_make_one_step(self) -> None:
        project = unique_project("again")
        steps = [{"op": "prepare"}, {"op": "train", "depends_on": ["ops.prepare"]}]
        proxy = FlakyProxy(self.service.url)
        try:
            with RunstateClient(proxy.url, ADMIN_TOKEN) as flaky:
                proxy.lose_next_answers(2)  # the parent's answer, then the first step's
                first = flaky.create_pipeline(project, steps, idempotency_key="nightly-42", rollup=True)
            self.assertEqual(proxy.lost, 2)
        finally:
            proxy.close()
        again = self.client.create_pipeline(project, steps, idempotency_key="nightly-42", rollup=True)
        self.assertEqual(again.parent.id, first.parent.id)
        self.assertEqual({op: h.id for op, h in again.steps.items()}, {op: h.id for op, h in first.steps.items()})
        self.assertEqual(len(self.runs_of(project)), 3)

    def test_a_step_the_server_refuses_names_the_step(self) -> None:
        project = unique_project("refused")
        with self.assertRaises(RunstateError) as caught:
            self.client.create_pipeline(project, [{"op": "ok"}, {"op": "bad", "heartbeat_timeout": -1}])
        error = caught.exception
        self.assertEqual(error.code, "BAD_USER_INPUT")
        self.assertEqual(error.field, "steps[1].heartbeatTimeout")
        self.assertEqual(error.extensions["op"], "bad")
        self.assertIn('step "bad"', str(error))
        # The parent and the steps before exist; the same call with the same key finishes it.
        self.assertEqual(len(self.runs_of(project)), 2)


if __name__ == "__main__":
    unittest.main()
