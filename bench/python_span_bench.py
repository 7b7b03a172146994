#!/usr/bin/python3
"""One span started and stopped from Python, what the application pays: `import tomograph`
(the build's, enqueuing on a segment as under mod_tomograph: bench/binding.py) against
Debian's python3-py-zipkin and python3-osprofiler, in one run, the cases alternated round
by round; median CPU ns per span and the ratios. Target (issue 16): tomograph's span at most
1 µs, and at least ten times cheaper than either.

Every span is a child of a span open for the whole round (tomograph's `request`, py_zipkin's
root `zipkin_span`): py_zipkin keeps a root's children and encodes them when the root ends,
which is in the round, so its figure includes the encoding (Zipkin v2 JSON) and a transport
that sends nothing. osprofiler's start and stop each hand a notification to a notifier that
does nothing (osprofiler.notifier.set).

Usage: bench/python_span_bench.py [--build DIR] [--rounds N]"""

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import binding  # noqa: E402

SERVICE, NAME, HOST, PORT = "my service", "a query", "127.0.0.1", 80


def tomograph_cases(tomograph):
    start, stop, span, begin, INTERNAL = (tomograph.start, tomograph.stop, tomograph.span,
                                          tomograph.begin, tomograph.INTERNAL)

    @tomograph.traced(SERVICE, NAME)
    def nothing():
        pass

    def start_stop(n):
        start(SERVICE, "request", HOST, PORT)
        for _ in range(n):
            start(SERVICE, NAME, HOST, PORT)
            stop(NAME)
        stop("request")

    def with_span(n):
        start(SERVICE, "request", HOST, PORT)
        for _ in range(n):
            with span(SERVICE, NAME, HOST, PORT):
                pass
        stop("request")

    def traced(n):
        start(SERVICE, "request", HOST, PORT)
        for _ in range(n):
            nothing()
        stop("request")

    def handle(n):
        parent = begin(None, None, INTERNAL, SERVICE, "request", HOST, PORT)
        for _ in range(n):
            begin(parent, None, INTERNAL, SERVICE, NAME, HOST, PORT).end()
        parent.end()

    return [("tomograph start/stop", start_stop), ("tomograph with span", with_span),
            ("tomograph traced", traced), ("tomograph handle", handle)]


def zipkin_case():
    from py_zipkin import Encoding
    from py_zipkin.transport import BaseTransportHandler
    from py_zipkin.zipkin import zipkin_span

    class Nowhere(BaseTransportHandler):
        def get_max_payload_bytes(self):
            return None

        def send(self, payload):
            pass

    nowhere = Nowhere()

    def zipkin(n):
        with zipkin_span(service_name=SERVICE, span_name="request", transport_handler=nowhere,
                         sample_rate=100.0, encoding=Encoding.V2_JSON):
            for _ in range(n):
                with zipkin_span(service_name=SERVICE, span_name=NAME):
                    pass

    return "py_zipkin zipkin_span", zipkin


def osprofiler_case():
    with warnings.catch_warnings():  # eventlet's, on Python 3.11: distutils
        warnings.simplefilter("ignore", DeprecationWarning)
        from osprofiler import notifier, profiler

    notifier.set(lambda info, context=None: None)
    profiler.init("a secret key")

    def osprofiler(n):
        profiler.start("request")
        for _ in range(n):
            profiler.start(NAME)
            profiler.stop()
        profiler.stop()

    return "osprofiler start/stop", osprofiler


def main():
    parser = binding.argument_parser(__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    tomograph, segment = binding.enter(args.build)
    binding.print_header("python_span_bench: one span started and stopped, from Python")
    print(f"spans enqueued on a segment ({segment.locator.decode()}), emptied between rounds")
    ours = tomograph_cases(tomograph)
    theirs = [zipkin_case(), osprofiler_case()]
    # Of tomograph's, what the queue holds (with the round's parent); of theirs, fewer.
    cases = [(name, function, 4000) for name, function in ours] \
        + [(name, function, 500) for name, function in theirs]
    per_span = binding.alternate(cases, args.rounds, binding.between_rounds(segment))
    medians = {name: binding.median(values) for name, values in per_span.items()}
    print(f"{args.rounds} rounds, the cases alternated; median CPU ns per span "
          f"(min-max over the rounds); {segment.popped} spans of tomograph's dequeued")
    for name, _, n in cases:
        values = per_span[name]
        print(f"  {name:24} {medians[name]:8.0f} ns  ({min(values):.0f}-{max(values):.0f}; "
              f"{n} spans a round)")
    print("theirs / ours, ratio of medians (target: >= 10)")
    print(" " * 26 + "".join(f"{name[10:]:>14}" for name, _ in ours))
    for theirs_name, _ in theirs:
        print(f"  {theirs_name:24}" + "".join(f"{medians[theirs_name] / medians[name]:14.1f}"
                                              for name, _ in ours))
    for name, _ in ours:
        verdict = "met" if medians[name] <= 1000 else "NOT met"
        print(f"  {name:24} {medians[name]:8.0f} ns <= 1000 ns: {verdict}")


if __name__ == "__main__":
    main()
