"""The event log's recorder: what it keeps is what a plain concatenation of the inputs gives."""

import numpy as np

from sim.eventlog import _COLUMNS, EventLog


def _reference(calls):
    """The columns as the recorder once built them: broadcast, cast, filter, concatenate."""
    defaults = {"session": -1, "product": -1, "quantity": 1, "value": np.nan, "channel": -1,
                "order": -1}  # fmt: skip
    names = {"time": "time", "user_id": "user", "session_id": "session",
             "product_id": "product", "quantity": "quantity", "value": "value",
             "channel": "channel", "order_id": "order"}  # fmt: skip
    out = {c: [] for c in _COLUMNS}
    for event, kw in calls:
        kw = defaults | kw
        n, keep = len(kw["user"]), np.asarray(kw["time"]) >= 0
        if not keep.any():
            continue
        for col, dtype in _COLUMNS.items():
            v = EventLog(True).code(event) if col == "event" else kw[names[col]]
            arr = np.broadcast_to(np.asarray(v, dtype=dtype), (n,))
            out[col].append(arr[keep])
    return {c: np.concatenate(v) for c, v in out.items()}


def test_scalars_arrays_and_partly_kept_batches_join_as_a_concatenation():
    g = np.random.default_rng(3)
    t = g.uniform(-2, 5, 40)
    calls = [
        (
            "purchase",
            {
                "time": t[:10],
                "user": np.arange(10),
                "value": g.random(10) * 100,
                "order": np.arange(10) + 7,
                "quantity": 2,
            },
        ),  # fmt: skip
        ("email_send", {"time": np.abs(t[10:20]), "user": np.arange(10, 20), "channel": 4}),
        (
            "return",
            {
                "time": t[20:30],
                "user": np.arange(20, 30),
                "value": np.float64(-3.5),
                "product": np.array([5]),
                "quantity": np.array(3),
            },
        ),  # fmt: skip
        (
            "review",
            {
                "time": t[30:35],
                "user": np.arange(5),
                "quantity": g.random(5) * 5,
                "session": np.arange(5, dtype=np.int32),
                "channel": np.int8(-1),
            },
        ),  # fmt: skip
        ("view_item", {"time": -np.ones(5), "user": np.arange(5)}),  # nothing kept
        ("view_item", {"time": np.zeros(0), "user": np.zeros(0, int)}),  # empty
    ]
    log = EventLog(True)
    for event, kw in calls:
        kw = dict(kw)
        log.add(event, kw.pop("time"), kw.pop("user"), **kw)
    table = log.table(np.zeros(40, np.int8), ["control"], ("a", "b", "c", "d", "e", "f"))
    expected = _reference(calls)
    order = np.argsort(expected["time"], kind="stable")
    for col in ("time", "user_id", "session_id", "product_id", "quantity", "value", "order_id"):
        got = table[col].to_numpy(zero_copy_only=False)
        want = expected[col][order]
        assert got.dtype == want.dtype, col
        np.testing.assert_array_equal(got, want, err_msg=col)
    channel = table["channel"].combine_chunks().indices.to_numpy()
    np.testing.assert_array_equal(channel, expected["channel"][order] + 1)
    assert table["event"].to_pylist() == [log.names[c] for c in expected["event"][order]]
