#!/usr/bin/python3
"""SQL statement tracing: what tomograph's SQLAlchemy listeners (tomograph.before_execute,
tomograph.after_execute) add to a statement. The same SQLAlchemy 1.4 query (a Core select
of one row by primary key, fetched) on two in-memory SQLite engines alike but for the
listeners, alternated round by round in one run, inside a span open for the round (a
request's, as in an app); median CPU µs per statement, the difference and the ratio. The
statements' spans are enqueued on a segment as under mod_tomograph (bench/binding.py).

Usage: bench/sql_bench.py [--build DIR] [--rounds N]"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import binding  # noqa: E402

STATEMENTS = 2000  # a round, ~40 ms


def engine(tomograph, traced):
    import sqlalchemy as sa
    engine = sa.create_engine("sqlite://")
    metadata = sa.MetaData()
    items = sa.Table("items", metadata, sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("name", sa.String(64)))
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(items.insert(), [{"id": i, "name": f"item {i}"} for i in range(100)])
    if traced:
        sa.event.listen(engine, "before_execute", tomograph.before_execute("db"))
        sa.event.listen(engine, "after_execute", tomograph.after_execute("db"))
    return engine, sa.select(items).where(items.c.id == sa.bindparam("id"))


def statements(tomograph, engine, query):
    def run(n):
        tomograph.start("app", "request", None, 0)
        with engine.connect() as connection:
            for i in range(n):
                connection.execute(query, {"id": i % 100}).fetchall()
        tomograph.stop("request")
    return run


def main():
    parser = binding.argument_parser(__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    tomograph, segment = binding.enter(args.build)
    binding.print_header("sql_bench: a SQLAlchemy statement, with and without tomograph's "
                         "listeners")
    cases = [(name, statements(tomograph, *engine(tomograph, traced)), STATEMENTS)
             for name, traced in (("untraced", False), ("traced", True))]
    per_statement = binding.alternate(cases, args.rounds, binding.between_rounds(segment))
    untraced, traced = (binding.median(per_statement[name]) / 1000
                        for name in ("untraced", "traced"))
    spans = segment.popped
    print(f"{args.rounds} rounds of {STATEMENTS} statements, alternated; median CPU µs per "
          f"statement; {spans} spans dequeued")
    print(f"  untraced {untraced:7.2f} µs")
    print(f"  traced   {traced:7.2f} µs")
    print(f"  the listeners' cost {traced - untraced:.2f} µs a statement; "
          f"traced / untraced {traced / untraced:.3f}")


if __name__ == "__main__":
    main()
