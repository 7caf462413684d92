"""What PostgreSQL would do with the statements a request runs on the job table: for tests
that a page or a scrape reads it through index ranges only, so it costs the same however
long the history."""

from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Engine, event


def job_statements(engine: Engine, call: Callable[[], object]) -> list[tuple[str, Any]]:
    """The statements (and parameters) on the job table that `call` runs."""
    seen: list[tuple[str, Any]] = []

    def capture(conn: object, cursor: object, statement: str, parameters: Any, *_: Any) -> None:
        if " job" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return seen


def job_scans(plan: dict) -> Iterator[dict]:
    """The plan's nodes that read the job table or one of its indexes."""
    if plan.get("Relation Name") == "job" or plan.get("Index Name", "").startswith(
        ("ix_job", "uq_job", "job_pkey")
    ):
        yield plan
    for child in plan.get("Plans", []):
        yield from job_scans(child)


def plans(engine: Engine, statements: list[tuple[str, Any]]) -> Iterator[tuple[str, dict]]:
    """Each statement's plan, with sequential scans priced out: a scan that still reads the
    whole table (or the whole of an index) is then one that no index can bound."""
    with engine.connect() as connection:
        connection.exec_driver_sql("SET enable_seqscan = off")
        for statement, parameters in statements:
            explained = connection.exec_driver_sql(
                "EXPLAIN (FORMAT JSON) " + statement, parameters
            ).scalar_one()
            yield statement, explained[0]["Plan"]


def unbounded(plan: dict) -> list[str]:
    """The job scans of a plan that are not index ranges."""
    return [
        node.get("Index Name", node["Node Type"])
        for node in job_scans(plan)
        if node["Node Type"] == "Seq Scan" or ("Index Name" in node and "Index Cond" not in node)
    ]
