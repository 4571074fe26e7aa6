//! The analyzer's errors.

use std::path::PathBuf;

/// Everything that can go wrong in the analyzer.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzerError {
    /// A table directory holds no data files.
    #[error(
        "no {table} data under {dir}: expected files like {dir}/cable=<id>/date=<YYYY-MM-DD>/part-*.parquet"
    )]
    MissingTable {
        /// Table name.
        table: &'static str,
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// The data directory holds none of the stored tables.
    #[error(
        "no stored tables under {dir}: expected {tables} directories (is this the collector's --data-dir?)"
    )]
    NoData {
        /// The data directory.
        dir: PathBuf,
        /// The table directory names looked for.
        tables: String,
    },
    /// A stored column is missing or has the wrong type.
    #[error("{table} ({dir}): column {column}: {problem}")]
    Schema {
        /// Table name.
        table: &'static str,
        /// Table directory.
        dir: PathBuf,
        /// Column name.
        column: String,
        /// What is wrong.
        problem: String,
    },
    /// polars failed reading or computing.
    #[error("{context}: {source}")]
    Polars {
        /// What was being done.
        context: String,
        /// polars' error.
        source: polars::error::PolarsError,
    },
    /// An input file is unreadable or malformed.
    #[error("{}{}: {problem}", path.display(), if *line > 0 { format!(", line {line}") } else { String::new() })]
    Input {
        /// The file.
        path: PathBuf,
        /// 1-based line, 0 when the problem is the whole file.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// The report or one of its plots could not be written.
    #[error(transparent)]
    Report(Box<crate::report::ReportError>),
    /// The demo could not run a stage.
    #[error("demo: {stage}: {reason}")]
    Demo {
        /// Stage that failed.
        stage: &'static str,
        /// What happened.
        reason: String,
    },
}

impl From<crate::report::ReportError> for AnalyzerError {
    fn from(e: crate::report::ReportError) -> Self {
        AnalyzerError::Report(Box::new(e))
    }
}

impl AnalyzerError {
    /// A problem with an input file (`line` 0: the whole file).
    pub fn input(path: impl Into<PathBuf>, line: usize, problem: impl ToString) -> Self {
        AnalyzerError::Input {
            path: path.into(),
            line,
            problem: problem.to_string(),
        }
    }
}

/// Result alias for the analyzer.
pub type Result<T, E = AnalyzerError> = std::result::Result<T, E>;

/// Wraps a polars error with what was being done.
pub(crate) fn polars_ctx(
    context: impl Into<String>,
) -> impl FnOnce(polars::error::PolarsError) -> AnalyzerError {
    let context = context.into();
    move |source| AnalyzerError::Polars { context, source }
}
