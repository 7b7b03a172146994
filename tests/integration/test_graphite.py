"""statsd to Graphite: the module's statsd lines go through the real statsd daemon (npm) and
its graphite backend into Debian's carbon-cache, and are read back from carbon's whisper
files: the metric paths an operator puts on a dashboard, and their values (a span's timer,
a counter per note) against what the requests made and what the spans say.

Carbon runs with the README's storage-schemas section for statsd (its retentions made
1 s for an hour, 10 s for a day) and its storage-aggregation.conf. statsd flushes every 2 s:
each flush is a 1 s point of its own, none overwritten, so a count over the whole run is the
sum of the points. The 10 s points carbon rolls them up into (counts summed, extremes kept)
must add up to the same."""

import re
import time
import unittest

from harness import REPO_ROOT, CarbonCache, StatsdDaemon, TracingTestCase, wait_for

try:
    import whisper
except ImportError:  # pragma: no cover - a machine without python3-whisper
    whisper = None

FLUSH_S = 2
FINE_S, COARSE_S = 1, 10
RETENTIONS = f"{FINE_S}s:1h,{COARSE_S}s:1d"
# What statsd computes for a timer with its default percentThreshold [90].
TIMER_STATS = {"count", "count_ps", "lower", "upper", "mean", "median", "std", "sum",
               "sum_squares", "count_90", "upper_90", "mean_90", "sum_90", "sum_squares_90"}
STATIC_GETS = 5
LOOPS = 2
# httpd's LimitInternalRecursion default: /loop/x redirects ten times, then logs AH00124.
REDIRECT_LIMIT = 10

SITE_CONFIG = (
    '<Directory "@SERVER_ROOT@/htdocs/loop">',
    "    Options +FollowSymLinks",
    "    RewriteEngine On",
    "    RewriteRule ^(.*)$ /loop/again-$1",
    "</Directory>",
)


def readme_block(start):
    """The text of the README's ```ini block whose first line is `start`."""
    readme = (REPO_ROOT / "README.md").read_text()
    found = re.search(rf"^```ini\n({re.escape(start)}\n.*?)^```$", readme,
                      re.MULTILINE | re.DOTALL)
    if not found:
        raise AssertionError(f"README.md has no ```ini block starting with {start!r}")
    return found.group(1)


def readme_aggregation():
    """The storage-aggregation.conf the README's "Graphite" section gives operators."""
    return readme_block("# /etc/carbon/storage-aggregation.conf")


def readme_schemas():
    """The storage-schemas.conf section the README gives for statsd's metrics, with this
    test's retentions, before a default that keeps anything else a minute a point."""
    section = readme_block("[statsd]")
    ours = re.sub(r"^retentions = .*$", f"retentions = {RETENTIONS}", section, flags=re.MULTILINE)
    if ours == section:
        raise AssertionError(f"no retentions line in the README's [statsd] section: {section}")
    return ours + "\n[default]\npattern = .*\nretentions = 60s:1d\n"


def expected_aggregation(metric):
    """How the README says carbon should roll a metric's points up."""
    last = metric.rsplit(".", 1)[-1]
    if last == "lower":
        return "min"
    if re.fullmatch(r"upper(_\d+)?", last):
        return "max"
    if re.fullmatch(r"(count|sum|sum_squares)(_\d+)?", last) or metric.startswith("stats_counts."):
        return "sum"
    return "average"


class GraphiteTest(TracingTestCase):
    """With the graphite backend's defaults (legacyNamespace): timers under stats.timers.,
    a counter's count under stats_counts. and its rate under stats.."""

    ZIPKIN = True
    STATSD = True
    SITE_CONFIG = SITE_CONFIG
    FILES = {"loop/placeholder.txt": ""}
    GRAPHITE_CONFIG = None

    @classmethod
    def start_statsd(cls):
        if whisper is None:
            raise AssertionError("python3 cannot import whisper: install python3-whisper "
                                 "(scripts/setup)")
        cls.carbon = cls.stopped_after_class(
            CarbonCache(cls.workdir, schemas=readme_schemas(), aggregation=readme_aggregation()))
        return StatsdDaemon(cls.workdir, graphite=cls.carbon, flush_interval_ms=FLUSH_S * 1000,
                            graphite_config=cls.GRAPHITE_CONFIG)

    # --- where statsd's graphite backend puts a metric ------------------------------

    @staticmethod
    def timer(name, stat):
        return f"stats.timers.{name}.{stat}"

    @staticmethod
    def counter_count(name):
        return f"stats_counts.{name}"

    @staticmethod
    def counter_rate(name):
        return f"stats.{name}"

    def counters_under(self, name):
        """The notes' counters carbon has for the span name (the last components)."""
        prefix = self.counter_count(name) + "."
        return {metric[len(prefix):] for metric in self.carbon.metrics()
                if metric.startswith(prefix)}

    # --- reading whisper files ------------------------------------------------------

    def points(self, metric, step=FINE_S):
        """{timestamp: value} of the points carbon has written for metric in its archive of
        that step ({} if no file)."""
        path = self.carbon.whisper_file(metric)
        if not path.is_file():
            return {}
        # From no further back than that archive reaches: a longer range would wrap around it.
        archive, = (archive for archive in whisper.info(str(path))["archives"]
                    if archive["secondsPerPoint"] == step)
        now = int(time.time())
        (start, _, got_step), values = whisper.fetch(
            str(path), now - archive["retention"] + step, now, archiveToSelect=step)
        self.assertEqual(got_step, step, metric)
        return {start + i * step: value for i, value in enumerate(values) if value is not None}

    def total(self, metric, step=FINE_S):
        return sum(self.points(metric, step).values())

    def assertTotals(self, name, expected):
        """The totals of the span name's timer count ("timer count") and of its notes'
        counters (by note) are `expected`, in the fine archive and in the rolled-up one.
        Waits for them to get there (carbon writes behind), then two flushes more, so
        that what would come late and make them too high comes too."""
        metrics = {key: self.timer(name, "count") if key == "timer count"
                   else self.counter_count(f"{name}.{key}") for key in expected}

        def totals(step):
            return {key: self.total(metric, step) for key, metric in metrics.items()}
        try:
            wait_for(lambda: totals(FINE_S) == expected and totals(COARSE_S) == expected,
                     f"the totals of {name} in carbon", timeout=30, interval=0.5)
        except AssertionError:
            pass  # the comparisons below say how they differ
        else:
            time.sleep(2 * FLUSH_S + 1)
        self.assertEqual(totals(FINE_S), expected, f"{FINE_S} s points\n{self.describe_graphite()}")
        self.assertEqual(totals(COARSE_S), expected,
                         f"{COARSE_S} s points\n{self.describe_graphite()}")

    def describe_graphite(self):
        return self.carbon.describe() + "\nstatsd got:\n" + "\n".join(self.statsd.lines()[-40:])

    def assertStoredAsTheReadmeSays(self, name):
        """Each of the span name's files has the retentions of the README's [statsd] section
        (here this test's) and rolls up as its aggregation file says."""
        metrics = [metric for metric in self.carbon.metrics() if f".{name}." in metric]
        self.assertGreaterEqual(len(metrics), len(TIMER_STATS) + 2 * 2, metrics)
        infos = {metric: whisper.info(str(self.carbon.whisper_file(metric))) for metric in metrics}
        steps = {metric: [archive["secondsPerPoint"] for archive in info["archives"]]
                 for metric, info in infos.items()}
        self.assertEqual(steps, {metric: [FINE_S, COARSE_S] for metric in metrics})
        methods = {metric: info["aggregationMethod"] for metric, info in infos.items()}
        self.assertEqual(methods, {metric: expected_aggregation(metric) for metric in metrics})

    def assertTimerAgrees(self, name, spans):
        """Every statistic of the timer has its file, and they hold what the spans say:
        the durations' sum and extremes, to the microsecond."""
        stats = {stat: self.points(self.timer(name, stat)) for stat in TIMER_STATS}
        self.assertEqual({stat for stat, points in stats.items() if not points}, set(),
                         f"timer statistics without a point\n{self.carbon.describe()}")
        durations_ms = [span["duration"] / 1000 for span in spans]
        self.assertAlmostEqual(sum(stats["sum"].values()), sum(durations_ms), delta=0.001)
        self.assertAlmostEqual(max(stats["upper"].values()), max(durations_ms), delta=0.001)
        self.assertAlmostEqual(min(stats["lower"].values()), min(durations_ms), delta=0.001)
        # Rolled up: the sum summed, the extremes kept.
        for stat, rolled_up, expected in (("sum", sum, sum(durations_ms)),
                                          ("upper", max, max(durations_ms)),
                                          ("lower", min, min(durations_ms))):
            points = self.points(self.timer(name, stat), COARSE_S).values()
            self.assertAlmostEqual(rolled_up(points), expected, delta=0.001, msg=stat)
        flushes = [when for when, count in stats["count"].items() if count > 0]
        self.assertTrue(flushes, stats["count"])
        for when in flushes:
            count = stats["count"][when]
            lower, mean, upper = (stats[stat][when] for stat in ("lower", "mean", "upper"))
            # A request for a small file or a redirect loop: well under a few seconds.
            self.assertTrue(0 < lower <= mean <= upper < 3000, (when, lower, mean, upper))
            self.assertAlmostEqual(mean, stats["sum"][when] / count, delta=0.001)
            self.assertAlmostEqual(stats["count_ps"][when], count / FLUSH_S, delta=1e-9)

    def assertRatesAgree(self, name, note):
        """The rate of a note's counter is its count per second of a flush interval."""
        counts = self.points(self.counter_count(f"{name}.{note}"))
        rates = wait_for(lambda: self.points(self.counter_rate(f"{name}.{note}")).keys()
                         >= counts.keys() and self.points(self.counter_rate(f"{name}.{note}")),
                         f"the rates of {name}.{note}", context=self.carbon.describe)
        self.assertEqual(set(rates), set(counts), (name, note))
        for when, count in counts.items():
            self.assertAlmostEqual(rates[when], count / FLUSH_S, delta=1e-9, msg=(name, note))

    # --- the tests ------------------------------------------------------------------

    def test_a_static_file_is_a_timer_and_its_start_and_stop_counters(self):
        for _ in range(STATIC_GETS):
            self.request("/static.txt")
        spans = wait_for(lambda: len(self.spans_of("/static.txt")) >= STATIC_GETS and
                         self.spans_of("/static.txt"), f"{STATIC_GETS} spans of /static.txt",
                         context=self.describe_exports)
        name = "demo.get_static_txt"
        self.assertTotals(name, {"start": STATIC_GETS, "stop": STATIC_GETS,
                                 "timer count": STATIC_GETS})
        self.assertEqual(self.counters_under(name), {"start", "stop"})
        # The time to first byte: a timer of its own, a point per request.
        self.assertTotals(f"{name}.first_byte", {"timer count": STATIC_GETS})
        self.assertTimerAgrees(name, [span for span, _ in spans])
        self.assertRatesAgree(name, "start")
        self.assertStoredAsTheReadmeSays(name)

    def test_each_note_is_a_counter_named_by_its_kind(self):
        for _ in range(LOOPS):
            self.request("/loop/x", expect_status=500)
        spans = wait_for(lambda: len(self.spans_of("/loop/x")) >= LOOPS and
                         self.spans_of("/loop/x"), f"{LOOPS} spans of /loop/x",
                         context=self.describe_exports)
        for span, _ in spans:
            notes = [note["value"] for note in span["annotations"]]
            # start, the redirects, the error line, the first byte, stop.
            self.assertEqual(len(notes), 2 + REDIRECT_LIMIT + 2, notes)
        name = "demo.get_loop_x"
        self.assertTotals(name, {"start": LOOPS, "stop": LOOPS,
                                 "internal_redirect_to": LOOPS * REDIRECT_LIMIT,
                                 "error": LOOPS, "timer count": LOOPS})
        # Named by kind only: no path, no log message, becomes a metric (a file) of its own.
        self.assertEqual(self.counters_under(name),
                         {"start", "stop", "internal_redirect_to", "error"})
        self.assertTimerAgrees(name, [span for span, _ in spans])
        self.assertRatesAgree(name, "internal_redirect_to")


class GraphiteNewNamespaceTest(GraphiteTest):
    """With the graphite backend's legacyNamespace false: every counter under
    stats.counters.<name>, its count and its rate side by side."""

    GRAPHITE_CONFIG = {"legacyNamespace": False}

    @staticmethod
    def counter_count(name):
        return f"stats.counters.{name}.count"

    @staticmethod
    def counter_rate(name):
        return f"stats.counters.{name}.rate"

    def counters_under(self, name):
        prefix = f"stats.counters.{name}."
        return {metric[len(prefix):].rsplit(".", 1)[0] for metric in self.carbon.metrics()
                if metric.startswith(prefix)}


if __name__ == "__main__":
    unittest.main()
