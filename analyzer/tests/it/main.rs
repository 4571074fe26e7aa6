//! Analyzer integration tests: the end-to-end demo on the tiny scenario, the schema check against
//! the contract, filters and series extraction; the change-point engine on real labelled RTT traces
//! and through the command line; `run` with its findings, figures and the HTML report, opened in
//! headless Chromium.
#![allow(clippy::unwrap_used, missing_docs)]

mod changepoints;
mod eval;
mod load;
mod report;
mod run;

use polars::prelude::{DataFrame, HiveOptions, LazyFrame, ParquetWriter, PlRefPath, ScanArgsParquet};

/// One Parquet file, lazily.
pub(crate) fn scan_file(path: &std::path::Path) -> LazyFrame {
    LazyFrame::scan_parquet(
        PlRefPath::new(path.to_string_lossy().as_ref()),
        Default::default(),
    )
    .unwrap()
}

/// Every file of a stored table, with the partition columns (cable, date) from the paths.
pub(crate) fn scan_table(data: &std::path::Path, table: &str) -> LazyFrame {
    let glob = data.join(table).join("**/*.parquet");
    LazyFrame::scan_parquet(
        PlRefPath::new(glob.to_string_lossy().as_ref()),
        ScanArgsParquet {
            hive_options: HiveOptions::new_enabled(),
            ..Default::default()
        },
    )
    .unwrap()
}

/// Replaces a stored file with `df` (tests that tamper with stored data), marked with the current
/// stored-table contract like every file the collector and simulator write.
pub(crate) fn overwrite(path: &std::path::Path, mut df: DataFrame) {
    use cablewatch_proto::store::{CONTRACT_KEY, CONTRACT_VERSION};
    ParquetWriter::new(std::fs::File::create(path).unwrap())
        .with_key_value_metadata(Some(polars::io::parquet::write::KeyValueMetadata::from_static(
            vec![(CONTRACT_KEY.to_owned(), CONTRACT_VERSION.to_string())],
        )))
        .finish(&mut df)
        .unwrap();
}

/// Replaces a stored file with `df` as a writer of contract 1 left it: no contract metadata.
pub(crate) fn overwrite_as_contract_1(path: &std::path::Path, mut df: DataFrame) {
    ParquetWriter::new(std::fs::File::create(path).unwrap())
        .finish(&mut df)
        .unwrap();
}
