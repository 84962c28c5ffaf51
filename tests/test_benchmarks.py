"""The benchmarks are too slow for the suite; this checks their interface, tables and parsing."""

from __future__ import annotations

import inspect
import io
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from rich.console import Console

import benchmarks
from benchmarks import browser, build, common, layouts, serving, transfer
from benchmarks.common import Table

WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:8050/
  2 threads and 16 connections
  Latency Distribution
     50%  697.00us
     75%    1.15ms
     90%    3.24ms
     99%    1.20s
  2122 requests in 10.10s, 1.05MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   1929.32
Transfer/sec:      0.96MB
"""


def text_of(table: Table) -> str:
    buffer = io.StringIO()
    common.render(table, Console(file=buffer, width=200))
    return buffer.getvalue()


def test_every_benchmark_module_is_found_and_has_run() -> None:
    names = common.discover()
    assert {"build", "serving", "layouts", "transfer"} <= set(names)
    assert not {"common", "browser", "app"} & set(names)
    for name in names:
        run = common.load(name).run
        assert not [
            p for p in inspect.signature(run).parameters.values() if p.default is p.empty
        ], f"benchmarks.{name}.run must take no arguments"


@pytest.fixture
def extra_benchmark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module `benchmarks.zz_fake` (like the later deploy.py) in another folder of the package."""
    (tmp_path / "zz_fake.py").write_text(
        "from benchmarks.common import Table\n\n"
        "def run():\n"
        "    return Table('Fake', ('what', 'seconds'), (('step', '1.0 s'),), ('a note',))\n"
    )
    (tmp_path / "zz_broken.py").write_text("def run():\n    raise RuntimeError('it broke')\n")
    monkeypatch.setattr(benchmarks, "__path__", [*benchmarks.__path__, str(tmp_path)])
    yield "zz_fake"
    for name in ("benchmarks.zz_fake", "benchmarks.zz_broken"):
        sys.modules.pop(name, None)


def test_a_new_module_is_picked_up_and_run(extra_benchmark: str) -> None:
    assert extra_benchmark in common.discover()
    out = io.StringIO()
    assert common.run_all([extra_benchmark], Console(file=out, width=120)) == 0
    assert "Fake" in out.getvalue() and "1.0 s" in out.getvalue() and "a note" in out.getvalue()


def test_a_failing_benchmark_does_not_hide_the_others(extra_benchmark: str) -> None:
    out = io.StringIO()
    assert common.run_all(["zz_broken", extra_benchmark], Console(file=out, width=120)) == 1
    assert "it broke" in out.getvalue() and "Fake" in out.getvalue()


def test_table_shape_and_formats() -> None:
    with pytest.raises(ValueError, match="2 cells"):
        Table("t", ("a", "b"), (("only one",),))
    table = Table("Title", ("name", "value"), (("x", "12.0 s"),), ("note one",))
    assert "Title" in text_of(table) and "note one" in text_of(table)
    assert common.markdown(table).splitlines() == [
        "**Title**",
        "",
        "| name | value |",
        "|---|---|",
        "| x | 12.0 s |",
        "",
        "- note one",
    ]
    assert common.ratio(1, 4) == "0.25x" and common.ratio(3, 1) == "3.00x"
    assert common.percent(1, 4) == "25%" and common.ratio(1, 0) == "n/a"
    assert common.seconds(1.234) == "1.2 s" and common.megabytes(128_200_000) == "128.2 MB"


def test_build_table() -> None:
    dashscale = build.Figures(
        "dashscale", build.Built("a", 20.0, 0), build.Built("b", 2.0, 5), 10**8
    )
    naive = build.Figures("naive", build.Built("c", 25.0, 0), build.Built("d", 25.0, 0), 2 * 10**8)
    table = build.table(dashscale, naive)
    assert [row[0] for row in table.rows] == ["dashscale", "naive", "dashscale / naive"]
    assert table.rows[0][1:4] == ("20.0 s", "2.0 s", "10%")
    assert table.rows[2][5] == "0.50x"
    assert "goal at most 35%: met" in table.notes[0]


def test_the_warm_rebuild_changes_one_line(tmp_path: Path) -> None:
    src = build.copy_example_app(tmp_path)
    before = (src / "app.py").read_text().splitlines()
    build.change_one_line(src / "app.py")
    after = (src / "app.py").read_text().splitlines()
    assert sum(a != b for a, b in zip(before, after, strict=True)) == 1
    assert (src / "requirements.txt").is_file()


def test_parse_wrk() -> None:
    load = serving.parse_wrk(WRK_OUTPUT)
    assert load.requests_per_second == 1929.32 and load.errors == 7
    assert (load.p50, load.p90, load.p99) == pytest.approx((0.697, 3.24, 1200.0))
    with pytest.raises(RuntimeError, match="unexpected wrk output"):
        serving.parse_wrk("connection refused")


def test_serving_table() -> None:
    fast, slow = serving.Load(2000, 5, 10, 20, 0), serving.Load(500, 20, 30, 40, 0)
    table = serving.table(
        {serving.PAGE: fast, serving.CALLBACK: fast},
        {serving.PAGE: slow, serving.CALLBACK: slow},
        "wrk",
    )
    assert len(table.rows) == 6 and len(table.columns) == 7
    assert table.rows[5][1:4] == ("image / dev server", "4.00x", "0.25x")
    assert "at least 1.5x with p99 no worse: met" in table.notes[0]
    table = serving.table(
        {serving.PAGE: fast, serving.CALLBACK: serving.Load(700, 5, 10, 41, 0)},
        {serving.PAGE: slow, serving.CALLBACK: slow},
        "wrk",
    )
    assert "no worse: NOT met; at least 1.3x: NOT met" in table.notes[0]


def test_with_layout_changes_only_workers_and_threads() -> None:
    command = ["gunicorn", "--bind", "0.0.0.0:1", "--workers", "3", "--threads", "4", "app:server"]
    assert serving.with_layout(command, 1, 8) == [
        *command[:3],
        *("--workers", "1", "--threads", "8"),
        "app:server",
    ]


def trial(cpus: float, layout: tuple[int, int] | None, rate: float, p99: float) -> layouts.Trial:
    return layouts.Trial(cpus, layout, serving.Load(rate, 1, 2, p99, 0))


def test_layout_pick_is_the_fastest_that_keeps_the_dev_servers_p99() -> None:
    size = [
        trial(1, None, 1000, 30),
        trial(1, (3, 4), 2000, 60),  # fastest, but its tail is worse
        trial(1, (2, 4), 1600, 29),
        trial(1, (1, 4), 1200, 20),
    ]
    assert layouts.pick(size).layout == (2, 4)
    # none keeps the dev server's p99: the lowest p99
    assert layouts.pick([size[0], size[1], trial(1, (2, 2), 1500, 40)]).layout == (2, 2)
    # within 5 % of the best rate: the fewest workers
    assert layouts.pick([*size, trial(1, (1, 8), 1560, 25)]).layout == (1, 8)
    table = layouts.table([*size, trial(2, None, 1500, 30), trial(2, (5, 4), 3000, 25)], "wrk")
    marks = {(row[0], row[1]): row[-1] for row in table.rows}
    assert marks[("1", "2 x 4")] == "picked" and marks[("1", "3 x 4")] == "before"
    assert marks[("2", "5 x 4")] == "picked, before"
    assert ("1", "2 x 4") in {(row[0], row[1]) for row in table.rows}


def test_transfer_table() -> None:
    page = transfer.Transfer(
        "page", 17, {"none": 9_000_000, "gzip": 2_500_000, "brotli": 2_000_000}
    )
    series = transfer.Transfer("series", 1, {"none": 800_000, "gzip": 300_000, "brotli": 190_000})
    table = transfer.table([page, series])
    assert table.rows[0] == ("page", "17", "9,000 kB", "2,500 kB", "2,000 kB", "3.60x", "4.50x")
    assert "page: 3.60x fewer bytes with gzip (goal at least 3x: met)" in table.notes
    assert "series: 2.67x fewer bytes with gzip (goal at least 3x: NOT met)" in table.notes


def test_requested_reads_the_pages_own_requests_from_a_net_log(tmp_path: Path) -> None:
    log = {
        "constants": {"logEventTypes": {"URL_REQUEST_START_JOB": 7, "OTHER": 8}},
        "events": [
            {"type": 7, "params": {"method": "GET", "url": "http://127.0.0.1:9/"}},
            {"type": 7, "params": {"method": "GET", "url": "http://clients2.google.com/x"}},
            {"type": 8, "params": {"url": "http://127.0.0.1:9/not-a-request"}},
            {"type": 7},
            {"type": 7, "params": {"method": "POST", "url": "http://127.0.0.1:9/_dash-update"}},
        ],
    }
    (tmp_path / "net.json").write_text(json.dumps(log))
    assert browser.requested(tmp_path / "net.json", "http://127.0.0.1:9") == [
        ("GET", "http://127.0.0.1:9/"),
        ("POST", "http://127.0.0.1:9/_dash-update"),
    ]


class _Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = serving.CALLBACK_ANSWER.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default backlog of 5 resets some of 16 connections at once
    daemon_threads = True


def test_python_load_generator_measures_a_local_server() -> None:
    server = _Server(("127.0.0.1", 0), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        load = serving.run_python_load(server.server_address[1], serving.CALLBACK, 1)
    finally:
        server.shutdown()
        server.server_close()
    assert load.requests_per_second > 0 and load.errors == 0
    assert 0 < load.p50 <= load.p90 <= load.p99
