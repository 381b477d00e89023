"""Each system's own status names, both ways: sent with transition(), read as native_status."""

from __future__ import annotations

import unittest
from typing import List, Tuple

from runstate import Dialect, TransitionRefusedError

from .support import ServiceTest, history, unique_project


class DialectsTest(ServiceTest):

    def drive(self, dialect: str, path: List[str]) -> Tuple[object, List[Tuple[str, str]]]:
        """Create a run in `dialect` and move it along `path`; each answer names the status natively."""
        run = self.client.create_run(unique_project(dialect.lower()), dialect=dialect)
        self.assertEqual(run.current.dialect, dialect.upper())
        seen = [(run.current.status, run.current.native_status)]
        for name in path:
            answer = run.transition(name)
            self.assertEqual(answer.native_status, name, f"{dialect}: {name}")
            self.assertEqual(run.current.native_status, name)
            seen.append((answer.status, answer.native_status))
        return run, seen

    def test_parsl_launched_running_exec_done(self) -> None:
        run, seen = self.drive("PARSL", ["launched", "running", "exec_done"])
        self.assertEqual(seen, [("CREATED", "pending"), ("SCHEDULED", "launched"),
                                ("RUNNING", "running"), ("SUCCEEDED", "exec_done")])
        self.assertEqual([(c["to"], c["nativeTo"]) for c in history(run.id)],
                         [("CREATED", "pending"), ("SCHEDULED", "launched"),
                          ("RUNNING", "running"), ("SUCCEEDED", "exec_done")])
        # The client's history in another dialect's names.
        self.assertEqual([c.native_to for c in run.history(dialect=Dialect.PERCEVAL)],
                         ["WAITING", "RUNNING", "RUNNING", "SUCCESS"])

    def test_parsl_a_task_that_finished_before_anyone_saw_it_run(self) -> None:
        _, seen = self.drive("parsl", ["launched", "exec_done"])
        self.assertEqual(seen[-1], ("SUCCEEDED", "exec_done"))

    def test_parsl_memo_done_is_skipped_with_its_reason(self) -> None:
        run, seen = self.drive("PARSL", ["memo_done"])
        self.assertEqual(seen[-1], ("SKIPPED", "memo_done"))
        self.assertEqual(history(run.id)[-1]["reason"], "MEMOIZED")

    def test_perceval_waiting_running_success_and_its_server_name(self) -> None:
        run, seen = self.drive("PERCEVAL", ["RUNNING", "SUCCESS"])
        self.assertEqual(seen, [("CREATED", "WAITING"), ("RUNNING", "RUNNING"), ("SUCCEEDED", "SUCCESS")])
        other = self.client.create_run(unique_project("perceval"), dialect=Dialect.PERCEVAL)
        other.transition("RUNNING")
        # The Perceval server's own name for success is an alias: answered as SUCCESS.
        self.assertEqual(other.transition("completed").native_status, "SUCCESS")

    def test_perceval_cancel_requested_then_canceled(self) -> None:
        _, seen = self.drive("PERCEVAL", ["RUNNING", "CANCEL_REQUESTED", "CANCELED"])
        self.assertEqual([s for s, _ in seen], ["CREATED", "RUNNING", "STOPPING", "STOPPED"])

    def test_polyaxon_from_created_to_succeeded(self) -> None:
        _, seen = self.drive(
            "POLYAXON", ["compiled", "queued", "scheduled", "starting", "running", "succeeded"]
        )
        self.assertEqual([s for s, _ in seen],
                         ["CREATED", "COMPILED", "QUEUED", "SCHEDULED", "STARTING", "RUNNING", "SUCCEEDED"])

    def test_canary_diffed_is_failed_with_outcome_diff(self) -> None:
        run, seen = self.drive("CANARY", ["pending", "ready", "running", "diffed"])
        self.assertEqual(seen[-1], ("FAILED", "diffed"))
        self.assertEqual(history(run.id)[-1]["outcome"], "DIFF")

    def test_a_name_of_another_dialect_is_taken_with_dialect(self) -> None:
        run = self.client.create_run(unique_project("other"), dialect="PARSL")
        run.transition("RUNNING", dialect="PERCEVAL")
        answer = run.transition("completed", dialect="perceval")
        self.assertEqual((answer.status, answer.native_status), ("SUCCEEDED", "exec_done"))

    def test_start_and_succeed_send_runstate_statuses_on_a_parsl_run(self) -> None:
        run = self.client.create_run(unique_project("mixed"), dialect="PARSL")
        self.assertEqual(run.start().native_status, "running")
        self.assertEqual(run.succeed().native_status, "exec_done")

    def test_a_move_the_lifecycle_refuses_in_native_names_raises(self) -> None:
        run = self.client.create_run(unique_project("refused"), dialect="PARSL")
        run.transition("launched")
        run.transition("exec_done")
        with self.assertRaises(TransitionRefusedError) as caught:
            run.transition("running")
        self.assertEqual(caught.exception.kind, "IllegalTransition")

    def test_list_runs_by_predicate_and_in_a_dialect(self) -> None:
        project = unique_project("pred")
        waiting = self.client.create_run(project, name="waiting", dialect="PARSL")
        done = self.client.create_run(project, name="done", dialect="PARSL")
        done.transition("launched")
        done.transition("exec_done")
        final = self.client.list_runs({"project": project, "predicate": {"dialect": "parsl", "name": "final"}})
        self.assertEqual([(r.name, r.native_status) for r in final.runs], [("done", "exec_done")])
        in_perceval = self.client.list_runs({"project": project}, dialect="PERCEVAL")
        self.assertEqual({r.name: r.native_status for r in in_perceval.runs},
                         {"waiting": "WAITING", "done": "SUCCESS"})
        own = self.client.list_runs({"project": project})
        self.assertEqual({r.id: r.native_status for r in own.runs}[waiting.id], "pending")


if __name__ == "__main__":
    unittest.main()
