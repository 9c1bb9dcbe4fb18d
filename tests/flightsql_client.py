"""A real Flight SQL client for the e2e tests: the ADBC Flight SQL driver from PyPI
(adbc-driver-flightsql) with pyarrow. Prints one JSON object on stdout.

    python tests/flightsql_client.py URI TOKEN query SQL     -> {"rows": [...], "columns": [...]}
    python tests/flightsql_client.py URI TOKEN objects       -> {"tables": [...]}
    python tests/flightsql_client.py URI TOKEN basic SQL     -> like query, with Basic auth
                                                                (user "analyst", TOKEN as password)

Errors from the server are printed as {"error": "..."} with exit code 0, so the caller can check
that a wrong token or a write statement is refused; anything else exits non-zero.
"""

import json
import sys

import adbc_driver_flightsql.dbapi as flight_sql
from adbc_driver_flightsql import DatabaseOptions
import adbc_driver_manager


def connect(uri, token, basic=False):
    if basic:
        return flight_sql.connect(
            uri,
            db_kwargs={"username": "analyst", "password": token},
        )
    return flight_sql.connect(
        uri,
        db_kwargs={DatabaseOptions.AUTHORIZATION_HEADER.value: f"Bearer {token}"},
    )


def run_query(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        table = cur.fetch_arrow_table()
    return {"columns": table.column_names, "rows": table.to_pylist()}


def main():
    uri, token, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    try:
        if mode in ("query", "basic"):
            with connect(uri, token, basic=(mode == "basic")) as conn:
                out = run_query(conn, sys.argv[4])
        elif mode == "objects":
            with connect(uri, token) as conn:
                objs = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
                tables = sorted(
                    t["table_name"]
                    for cat in objs
                    for schema in (cat["catalog_db_schemas"] or [])
                    for t in (schema["db_schema_tables"] or [])
                )
                out = {"tables": tables}
        else:
            raise SystemExit(f"unknown mode {mode}")
    except adbc_driver_manager.Error as e:
        out = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(out, default=str, ensure_ascii=False))


if __name__ == "__main__":
    main()
