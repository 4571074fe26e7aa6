//! On-disk layout of the stored tables: Hive-style partitions under one data root.
//!
//! ```text
//! <data>/<table>/cable=<cable id>/date=<YYYY-MM-DD>/part-<name>.parquet
//! ```
//!
//! Files are written under a hidden temporary name (`.<name>.parquet.tmp`) and renamed when complete,
//! so a reader globbing `**/*.parquet` never sees a partial file.

use std::path::{Path, PathBuf};

use crate::{CableId, tables::Table, time};

/// Extension of finished data files.
pub const PARQUET_EXT: &str = "parquet";

/// `<data>/<table>`.
pub fn table_dir(data: &Path, table: &Table) -> PathBuf {
    data.join(table.name)
}

/// `<data>/<table>/cable=<id>/date=<YYYY-MM-DD>` for the UTC date with epoch day `day`.
pub fn partition_dir(data: &Path, table: &Table, cable: &CableId, day: i32) -> PathBuf {
    table_dir(data, table)
        .join(format!("cable={cable}"))
        .join(format!("date={}", time::date_of_epoch_day(day)))
}

/// The glob matching every data file of a table, for readers (`polars.scan_parquet`, DuckDB).
pub fn table_glob(data: &Path, table: &Table) -> PathBuf {
    table_dir(data, table).join("**").join(format!("*.{PARQUET_EXT}"))
}

/// Final file name for a part with the given stem: `part-<stem>.parquet`.
pub fn part_file_name(stem: &str) -> String {
    format!("part-{stem}.{PARQUET_EXT}")
}

/// Temporary name under which a part is written before the rename.
pub fn temp_file_name(final_name: &str) -> String {
    format!(".{final_name}.tmp")
}

/// Cable id and date (`YYYY-MM-DD`) of a data file path, if it is in the layout.
pub fn parse_partition(path: &Path) -> Option<(CableId, String)> {
    let date_dir = path.parent()?;
    let cable_dir = date_dir.parent()?;
    let date = date_dir.file_name()?.to_str()?.strip_prefix("date=")?;
    let cable = cable_dir.file_name()?.to_str()?.strip_prefix("cable=")?;
    Some((CableId::try_new(cable).ok()?, date.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::OPTICAL_CHANNEL;

    #[test]
    fn partition_path_round_trips() {
        let cable = CableId::try_new("atl-1").unwrap();
        let day = time::epoch_day(time::parse_time("2026-11-21T23:59:59Z").unwrap());
        let dir = partition_dir(Path::new("/data"), &OPTICAL_CHANNEL, &cable, day);
        assert_eq!(
            dir,
            Path::new("/data/optical_channel/cable=atl-1/date=2026-11-21")
        );
        let file = dir.join(part_file_name("0001"));
        assert_eq!(parse_partition(&file), Some((cable, "2026-11-21".to_owned())));
        assert!(!temp_file_name("part-1.parquet").ends_with(".parquet"));
    }
}
