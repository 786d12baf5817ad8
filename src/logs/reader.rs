//! `vctl log`: where the platform's log is, and reading it with filters, once or
//! following it.
//!
//! | step | behaviour |
//! |------|-----------|
//! | where | `$VOLTTRON_HOME/run/log-path`, which `volttron -l FILE` writes at start (the absolute path; removed when it logs to stderr); else `$VOLTTRON_HOME/volttron.log` if it exists; else [`LogError::NoLogFile`] |
//! | filter | a record passes with a level at or above `--level` and, with `--agent`, that agent's identity ([`LogLine`]); the lines that continue a record go with it |
//! | output | the lines as written (JSON or human) |
//! | `--follow` | after the end, polls every [`POLL`] for more, like `tail -F`: a file replaced at the path (rotated, logrotate's `create`) is finished and then the new one read from its start; a truncated file is read again from its start |

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::home::VolttronHome;
use crate::logs::LogError;
use crate::logs::record::{LogLevel, LogLine};

/// The file in `run/` that names the platform's log file.
pub const LOG_PATH_FILE: &str = "log-path";

/// How often `--follow` looks for more.
pub const POLL: Duration = Duration::from_millis(100);

/// Records where the platform logs (`file`), or that it logs to no file (`None`), for
/// `vctl log`. Written atomically; call it once the platform holds the home's pid file.
pub fn record_log_path(home: &VolttronHome, file: Option<&Path>) -> Result<(), LogError> {
    let record = home.run_dir().join(LOG_PATH_FILE);
    let error = |e: crate::durable::DurableError| LogError::Record {
        path: record.clone(),
        reason: e.source.to_string(),
    };
    match file {
        Some(file) => {
            let absolute = std::path::absolute(file).map_err(|source| LogError::Open {
                path: file.to_owned(),
                source,
            })?;
            let mut text = absolute.into_os_string().into_encoded_bytes();
            text.push(b'\n');
            crate::durable::write(
                &record,
                &text,
                crate::durable::Perms::OwnerOnly,
                crate::durable::IfExists::Replace,
            )
            .map_err(error)?;
        }
        None => {
            crate::durable::remove(&record).map_err(error)?;
        }
    }
    Ok(())
}

/// The platform's log file (see the module docs).
pub fn platform_log_path(home: &VolttronHome) -> Result<PathBuf, LogError> {
    let record = home.run_dir().join(LOG_PATH_FILE);
    match std::fs::read(&record) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let path = text.trim_end_matches(['\n', '\r']);
            if !path.is_empty() {
                return Ok(PathBuf::from(path));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(LogError::Open { path: record, source }),
    }
    let default = home.log_file_default();
    if default.is_file() {
        return Ok(default);
    }
    Err(LogError::NoLogFile {
        home: home.path().to_owned(),
    })
}

/// `vctl log`'s options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// Only this agent's records.
    pub agent: Option<String>,
    /// Only records at this level or above.
    pub level: LogLevel,
    /// Keep reading as the file grows (until killed).
    pub follow: bool,
}

/// Writes the records of `path` that pass `query` to `out` (see the module docs); with
/// `follow`, returns only on an error.
pub fn read_log(path: &Path, query: &LogQuery, out: &mut impl Write) -> Result<(), LogError> {
    let open = |path: &Path| {
        File::open(path).map_err(|source| LogError::Open {
            path: path.to_owned(),
            source,
        })
    };
    let output = |source| LogError::Output { source };
    let mut file = open(path)?;
    let mut filter = Filter {
        query,
        pending: Vec::new(),
        keep: false,
    };
    loop {
        filter.pump(&mut file, out).map_err(output)?;
        if !query.follow {
            return filter.finish(out).map_err(output);
        }
        // At the end of the file: has it been replaced or truncated?
        let ours = file.metadata().map_err(|source| LogError::Open {
            path: path.to_owned(),
            source,
        })?;
        match std::fs::metadata(path) {
            Ok(now) if (now.dev(), now.ino()) != (ours.dev(), ours.ino()) => {
                // Rotated: what was written to the old file up to now, then the new one.
                filter.pump(&mut file, out).map_err(output)?;
                filter.finish(out).map_err(output)?;
                file = open(path)?;
                continue;
            }
            Ok(now) => {
                let position = file.stream_position().map_err(output)?;
                if now.len() < position {
                    file.seek(SeekFrom::Start(0)).map_err(output)?;
                    filter.pending.clear();
                    continue;
                }
            }
            // Between a rename and the new file's creation.
            Err(_) => {}
        }
        std::thread::sleep(POLL);
    }
}

/// Lines in, the records that pass out.
struct Filter<'q> {
    query: &'q LogQuery,
    /// A line not ended yet.
    pending: Vec<u8>,
    /// Whether the record being read passes.
    keep: bool,
}

impl Filter<'_> {
    /// Reads what `file` has now; writes each passing complete line.
    fn pump(&mut self, file: &mut File, out: &mut impl Write) -> io::Result<()> {
        let mut chunk = [0u8; 64 * 1024];
        let mut wrote = false;
        loop {
            let n = match file.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let mut rest = &chunk[..n];
            while let Some(end) = rest.iter().position(|&b| b == b'\n') {
                self.pending.extend_from_slice(&rest[..end]);
                rest = &rest[end + 1..];
                let line = std::mem::take(&mut self.pending);
                wrote |= self.line(&line, out)?;
            }
            self.pending.extend_from_slice(rest);
        }
        if wrote {
            out.flush()?;
        }
        Ok(())
    }

    /// The unterminated last line, at the end of a file that is done.
    fn finish(&mut self, out: &mut impl Write) -> io::Result<()> {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.line(&line, out)?;
        }
        out.flush()
    }

    fn line(&mut self, line: &[u8], out: &mut impl Write) -> io::Result<bool> {
        let text = String::from_utf8_lossy(line);
        if let Some(record) = LogLine::parse(&text) {
            self.keep = record.matches(self.query.agent.as_deref(), self.query.level);
        }
        if self.keep {
            out.write_all(text.as_bytes())?;
            out.write_all(b"\n")?;
        }
        Ok(self.keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_records_with_their_continuation_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.log");
        std::fs::write(
            &path,
            "2026-01-01T00:00:00Z  INFO x: hello agent=a\n\
             2026-01-01T00:00:00Z  WARN x: boom agent=a\n  Traceback line\n\
             {\"level\":\"ERROR\",\"agent\":\"b\",\"message\":\"m\"}\n\
             {\"level\":\"ERROR\",\"agent\":\"a\",\"message\":\"no line end\"}",
        )
        .unwrap();
        let query = LogQuery {
            agent: Some("a".into()),
            level: LogLevel::Warn,
            follow: false,
        };
        let mut out = Vec::new();
        read_log(&path, &query, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-01-01T00:00:00Z  WARN x: boom agent=a\n  Traceback line\n\
             {\"level\":\"ERROR\",\"agent\":\"a\",\"message\":\"no line end\"}\n"
        );
    }

    #[test]
    fn the_log_path_is_recorded_and_found() {
        let dir = tempfile::tempdir().unwrap();
        let home = VolttronHome::new(dir.path());
        assert!(matches!(
            platform_log_path(&home),
            Err(LogError::NoLogFile { .. })
        ));
        std::fs::write(home.log_file_default(), "").unwrap();
        assert_eq!(platform_log_path(&home).unwrap(), home.log_file_default());
        let elsewhere = dir.path().join("elsewhere.log");
        record_log_path(&home, Some(&elsewhere)).unwrap();
        assert_eq!(platform_log_path(&home).unwrap(), elsewhere);
        record_log_path(&home, None).unwrap();
        assert_eq!(platform_log_path(&home).unwrap(), home.log_file_default());
    }
}
