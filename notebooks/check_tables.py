"""Reads cablewatch's stored tables with pyarrow, DuckDB and polars -- no cablewatch code -- and checks
that the three agree with each other and with the contract in docs/data-model.md.

Usage: python3 notebooks/check_tables.py DATA_DIR
Exits non-zero, naming the table and reader, on any disagreement.
"""

import pathlib
import sys

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds

# Key columns and their types, from docs/data-model.md.
CONTRACT = {
    "optical_channel": {
        "time": pa.timestamp("ns", tz="UTC"),
        "fiber_pair": pa.uint32(),
        "direction": pa.string(),
        "channel": pa.uint32(),
        "interval_ns": pa.int64(),
        "q_db_avg": pa.float32(),
        "pre_fec_ber_avg": pa.float32(),
        "sop_roc_krad_s_max": pa.float32(),
    },
    "line_monitoring": {
        "time": pa.timestamp("ns", tz="UTC"),
        "sweep_id": pa.uint64(),
        "repeater": pa.uint32(),
        "loopback_gain_db": pa.float32(),
    },
    "latency": {
        "time": pa.timestamp("ns", tz="UTC"),
        "src_station": pa.string(),
        "kind": pa.string(),
        "delay_us": pa.float64(),
        "path_id": pa.string(),
    },
}
METRIC = {"optical_channel": "q_db_avg", "line_monitoring": "loopback_gain_db", "latency": "delay_us"}


def fail(msg: str) -> None:
    print(f"FAIL: {msg}")
    sys.exit(1)


def main(data: pathlib.Path) -> None:
    checked = 0
    for table, columns in CONTRACT.items():
        root = data / table
        if not root.is_dir():
            continue
        glob = str(root / "**" / "*.parquet")

        arrow = ds.dataset(root, format="parquet", partitioning="hive").to_table()
        for name, typ in columns.items():
            if arrow.schema.field(name).type != typ:
                fail(f"{table}.{name}: pyarrow reads {arrow.schema.field(name).type}, contract says {typ}")
        for part in ("cable", "date"):
            if part not in arrow.column_names:
                fail(f"{table}: pyarrow found no hive partition column {part}")

        duck = duckdb.sql(
            f"select count(*), count(distinct cable), sum({METRIC[table]}) "
            f"from read_parquet('{glob}', hive_partitioning = true)"
        ).fetchall()[0]
        pol = pl.scan_parquet(glob, hive_partitioning=True).select(
            pl.len(), pl.col("cable").n_unique(), pl.col(METRIC[table]).cast(pl.Float64).sum()
        ).collect().row(0)
        arrow_row = (arrow.num_rows, len(set(arrow.column("cable").to_pylist())),
                     pa.compute.sum(arrow.column(METRIC[table]).cast(pa.float64())).as_py())
        for reader, row in (("duckdb", duck), ("polars", pol)):
            if row[0] != arrow_row[0] or row[1] != arrow_row[1]:
                fail(f"{table}: {reader} sees {row[:2]} rows/cables, pyarrow {arrow_row[:2]}")
            if abs(row[2] - arrow_row[2]) > 1e-6 * max(1.0, abs(arrow_row[2])):
                fail(f"{table}: {reader} sums {METRIC[table]} to {row[2]}, pyarrow to {arrow_row[2]}")
        print(f"{table}: {arrow_row[0]} rows on {arrow_row[1]} cables; pyarrow, duckdb and polars agree")
        checked += 1
    if checked == 0:
        fail(f"no tables under {data}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        fail("usage: check_tables.py DATA_DIR")
    main(pathlib.Path(sys.argv[1]))
