//! The lifecycle's clock: the system clock, or a file holding the current time (drills, tests),
//! read at every call, so production and tests run the same code.

use anyhow::{Context, Result};
use chrono::{DateTime, FixedOffset};
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub enum Clock {
    System,
    /// The file's content is the current time in RFC 3339.
    File(PathBuf),
}

impl Clock {
    pub fn new(file: Option<PathBuf>) -> Clock {
        file.map_or(Clock::System, Clock::File)
    }

    pub fn now(&self) -> Result<DateTime<FixedOffset>> {
        match self {
            Clock::System => Ok(chrono::Utc::now().with_timezone(&crate::record::local_offset())),
            Clock::File(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read the clock file {}", p.display()))?;
                DateTime::parse_from_rfc3339(text.trim()).with_context(|| {
                    format!(
                        "clock file {}: `{}` is not an RFC 3339 time",
                        p.display(),
                        text.trim()
                    )
                })
            }
        }
    }

    /// Set a clock file's time (tests, drills).
    pub fn set(path: &std::path::Path, t: DateTime<FixedOffset>) -> Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, t.to_rfc3339())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
    }
}
