"""watch(): status changes over server-sent events, resumed from the last cursor after a drop."""

from __future__ import annotations

import threading
import unittest
from typing import List

from runstate import ReconnectInfo, RunstateClient, RunstateError, StatusChange

from .support import ADMIN_TOKEN, FlakyProxy, history, service, unique_project, wait_until

PATH = ["QUEUED", "SCHEDULED", "STARTING", "RUNNING", "PROCESSING", "SUCCEEDED"]


class WatchTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.service = service()
        cls.client = RunstateClient(cls.service.url, ADMIN_TOKEN)
        cls.proxy = FlakyProxy(cls.service.url)
        cls.flaky = RunstateClient(cls.proxy.url, ADMIN_TOKEN)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.client.close()
        cls.flaky.close()
        cls.proxy.close()

    def move(self, run_id: str, to: str) -> None:
        self.service.gql(
            "mutation($id: ID!, $to: RunStatus!) { transitionRun(input: { id: $id, to: $to }) { __typename } }",
            {"id": run_id, "to": to},
        )

    def test_receives_changes_live(self) -> None:
        project = unique_project("live")
        run = self.client.create_run(project, name="train", dialect="PARSL")
        with self.client.watch({"projects": [project]}, after=run.history()[-1].cursor) as changes:
            run.transition("launched")
            run.transition("exec_done")
            first = changes.next(timeout=10)
            second = changes.next(timeout=10)
            self.assertIsInstance(first, StatusChange)
            self.assertEqual((first.run_id, first.from_, first.to, first.native_to, first.version),
                             (run.id, "CREATED", "SCHEDULED", "launched", 2))
            self.assertEqual((second.to, second.native_to), ("SUCCEEDED", "exec_done"))
            self.assertEqual((second.project, second.run_name), (project, "train"))
            self.assertEqual(changes.cursor, second.cursor)
            with self.assertRaises(TimeoutError):
                changes.next(timeout=0.3)  # nothing else happened
        self.assertEqual(list(changes), [])  # closed: the iteration is over

    def test_resumes_from_its_last_cursor_after_the_connection_drops(self) -> None:
        project = unique_project("drop")
        run = self.client.create_run(project)
        reconnects: List[ReconnectInfo] = []
        got: List[StatusChange] = []
        watch = self.flaky.watch({"projects": [project]}, after=run.history()[-1].cursor,
                                 on_reconnect=reconnects.append)
        try:
            for i, to in enumerate(PATH):
                self.move(run.id, to)
                if i in (1, 3):
                    while len(got) < i + 1:
                        got.append(watch.next(timeout=10))
                    # The network drops the stream; the next changes commit meanwhile.
                    self.assertGreaterEqual(self.proxy.cut_all(), 1)
            while not got or got[-1].to != "SUCCEEDED":
                got.append(watch.next(timeout=10))
        finally:
            watch.close()
        self.assertEqual([(c.to, c.version) for c in got], [(to, i + 2) for i, to in enumerate(PATH)])
        self.assertEqual(len({c.cursor for c in got}), len(PATH))
        self.assertGreaterEqual(len(reconnects), 2)
        # Each time it resumed after the last change it had received.
        self.assertEqual(reconnects[0].cursor, got[1].cursor)
        self.assertEqual(reconnects[-1].cursor, got[3].cursor)
        self.assertEqual(watch.cursor, got[-1].cursor)
        # Exactly the server's log, in order.
        self.assertEqual([c.cursor for c in got], [c["cursor"] for c in history(run.id)[1:]])

    def test_a_connection_silent_too_long_is_replaced_and_loses_nothing(self) -> None:
        project = unique_project("silent")
        run = self.client.create_run(project)
        reconnects: List[ReconnectInfo] = []
        # The server pings every 12 s: with 0.3 s of patience, each connection looks dead.
        with self.client.watch({"projects": [project]}, after=run.history()[-1].cursor,
                               on_reconnect=reconnects.append, idle_timeout=0.3) as changes:
            wait_until("a reconnection", lambda: reconnects, timeout=5)
            self.assertIn("timed out", reconnects[0].reason)
            run.start()
            self.assertEqual(changes.next(timeout=10).to, "RUNNING")
            wait_until("another reconnection", lambda: len(reconnects) >= 3, timeout=10)
            with self.assertRaises(TimeoutError):
                changes.next(timeout=0.5)  # the change did not come again with a new connection

    def test_a_watch_started_after_a_cursor_replays_what_it_missed(self) -> None:
        project = unique_project("replay")
        run = self.client.create_run(project)
        cursor = run.history()[-1].cursor
        run.start()
        run.succeed()
        with self.client.watch({"run_ids": [run.id]}, after=cursor) as changes:
            self.assertEqual([changes.next(timeout=10).to for _ in range(2)], ["RUNNING", "SUCCEEDED"])

    def test_iterates_in_a_for_loop_and_is_closed_from_another_thread(self) -> None:
        project = unique_project("loop")
        run = self.client.create_run(project)
        watch = self.client.watch({"projects": [project]}, after=run.history()[-1].cursor)
        seen: List[str] = []

        def read() -> None:
            for change in watch:
                seen.append(change.to)

        reader = threading.Thread(target=read)
        reader.start()
        run.start()
        wait_until("the change", lambda: seen == ["RUNNING"])
        watch.close()
        reader.join(timeout=5)
        self.assertFalse(reader.is_alive())

    def test_a_filter_the_server_refuses_raises_instead_of_retrying(self) -> None:
        reconnects: List[ReconnectInfo] = []
        watch = self.client.watch({"run_ids": ["not-a-uuid"]}, on_reconnect=reconnects.append)
        with self.assertRaises(RunstateError) as caught:
            watch.next(timeout=10)
        self.assertEqual(caught.exception.code, "BAD_USER_INPUT")
        self.assertEqual(reconnects, [])
        with self.assertRaises(StopIteration):
            next(watch)

    def test_a_refused_token_raises_unauthenticated(self) -> None:
        with RunstateClient(self.service.url, "not-a-token") as stranger:
            with stranger.watch() as watch:
                with self.assertRaises(RunstateError) as caught:
                    watch.next(timeout=10)
        self.assertEqual(caught.exception.code, "UNAUTHENTICATED")


if __name__ == "__main__":
    unittest.main()
