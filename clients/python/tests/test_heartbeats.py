"""Heartbeats from a daemon thread keep a running run alive; a stop request reaches the worker."""

from __future__ import annotations

import threading
import time
import unittest

from runstate import RunstateClient

from .support import ADMIN_TOKEN, ServiceTest, server_run, service, unique_project, wait_until


class HeartbeatsTest(ServiceTest):

    def test_heartbeats_keep_a_run_with_a_heartbeat_timeout_alive(self) -> None:
        project = unique_project("beat")
        run = self.client.create_run(project, heartbeat_timeout=1)
        run.start()
        self.assertAlmostEqual(run.heartbeat_period, 1 / 3)  # a third of the timeout
        beats = [t for t in threading.enumerate() if t.name.startswith("runstate-heartbeat-" + run.id[:8])]
        self.assertEqual(len(beats), 1)
        self.assertTrue(beats[0].daemon)

        # The same kind of run, started without a handle (so without heartbeats): the reaper
        # marks it UNKNOWN once it has been silent a second.
        silent = self.service.gql(
            "mutation($p: String!) { createRun(input: { project: $p, heartbeatTimeout: 1 }) { id } }",
            {"p": project},
        )["createRun"]["id"]
        self.service.gql(
            "mutation($id: ID!) { transitionRun(input: { id: $id, to: RUNNING }) { __typename } }",
            {"id": silent},
        )
        wait_until("the silent run to time out", lambda: server_run(silent)["status"] == "UNKNOWN", timeout=10)
        time.sleep(1.2)  # longer than the timeout once more
        beating = server_run(run.id)
        self.assertEqual(beating["status"], "RUNNING")
        self.assertIsNotNone(beating["heartbeatAt"])
        self.assertEqual(run.current.status, "RUNNING")

        run.succeed()
        last = server_run(run.id)["heartbeatAt"]
        time.sleep(0.8)  # more than two periods: no beat goes out once the run is done
        self.assertEqual(server_run(run.id)["heartbeatAt"], last)
        wait_until("the heartbeat thread to end", lambda: not any(t.is_alive() for t in beats), timeout=3)

    def test_a_stop_request_is_seen_from_the_next_heartbeat_and_stop_confirms_it(self) -> None:
        with RunstateClient(self.service.url, ADMIN_TOKEN, heartbeat_interval=0.05) as beating:
            run = beating.create_run(unique_project("stop"))
            run.start()
            first = wait_until("a heartbeat", lambda: server_run(run.id)["heartbeatAt"])
            wait_until("another heartbeat", lambda: server_run(run.id)["heartbeatAt"] != first)
            self.assertFalse(run.stop_requested)

            # An operator asks the run to stop; the worker learns it from its next heartbeat.
            self.service.gql('mutation($id: ID!) { stopRun(id: $id, message: "operator") { __typename } }',
                             {"id": run.id})
            wait_until("stop requested", lambda: run.stop_requested)
            self.assertEqual(run.current.status, "STOPPING")
            self.assertEqual(run.stop("cleaned up").status, "STOPPED")
            stopped = server_run(run.id)["heartbeatAt"]
            time.sleep(0.3)
            self.assertEqual(server_run(run.id)["heartbeatAt"], stopped)

    def test_no_heartbeats_before_the_run_runs(self) -> None:
        with RunstateClient(self.service.url, ADMIN_TOKEN, heartbeat_interval=0.05) as beating:
            run = beating.create_run(unique_project("idle"), heartbeat_timeout=60)
            time.sleep(0.3)
            self.assertIsNone(server_run(run.id)["heartbeatAt"])
            self.assertIsNone(run.heartbeat_period)
            run.start()
            self.assertEqual(run.heartbeat_period, 0.05)  # the client's period wins
            wait_until("a heartbeat", lambda: server_run(run.id)["heartbeatAt"])


if __name__ == "__main__":
    unittest.main()
