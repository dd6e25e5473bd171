//! LDK's log records go to a file in the data directory and into a bounded in-memory queue that
//! Python drains in batches, so no log line ever needs the GIL.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use lightning::util::logger::{Level, Logger, Record};

/// How many records Python may fall behind before the oldest are dropped (the file keeps all).
const QUEUE_CAP: usize = 10_000;

#[derive(Clone, Debug)]
pub struct LogLine {
    pub level: &'static str,
    pub module: String,
    pub message: String,
}

/// `ldk.log` and its rotation: past `max_bytes` it becomes `ldk.log.1` (older ones shift up,
/// the oldest beyond `keep` is deleted) and a new file starts, so the log never fills the disk.
struct LogFile {
    path: PathBuf,
    writer: BufWriter<File>,
    written: u64,
    max_bytes: u64,
    keep: u32,
}

impl LogFile {
    fn open(path: &Path, max_bytes: u64, keep: u32) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Self { path: path.to_path_buf(), writer: BufWriter::new(file), written, max_bytes, keep })
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn write_line(&mut self, line: &str) -> std::io::Result<()> {
        if self.max_bytes > 0 && self.written > 0 && self.written + line.len() as u64 + 1 > self.max_bytes {
            self.rotate()?;
        }
        writeln!(self.writer, "{line}")?;
        self.writer.flush()?;
        self.written += line.len() as u64 + 1;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.writer.flush()?;
        if self.keep == 0 {
            let _ = std::fs::remove_file(&self.path);
        } else {
            let _ = std::fs::remove_file(self.rotated(self.keep));
            for n in (1..self.keep).rev() {
                let _ = std::fs::rename(self.rotated(n), self.rotated(n + 1));
            }
            std::fs::rename(&self.path, self.rotated(1))?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.writer = BufWriter::new(file);
        self.written = 0;
        Ok(())
    }
}

pub struct EngineLogger {
    min_level: Level,
    file: Mutex<Option<LogFile>>,
    queue: Mutex<VecDeque<LogLine>>,
    dropped: std::sync::atomic::AtomicU64,
}

pub fn parse_level(s: &str) -> Option<Level> {
    Some(match s.to_ascii_lowercase().as_str() {
        "gossip" => Level::Gossip,
        "trace" => Level::Trace,
        "debug" => Level::Debug,
        "info" => Level::Info,
        "warn" | "warning" => Level::Warn,
        "error" => Level::Error,
        _ => return None,
    })
}

fn level_name(l: Level) -> &'static str {
    match l {
        Level::Gossip => "GOSSIP",
        Level::Trace => "TRACE",
        Level::Debug => "DEBUG",
        Level::Info => "INFO",
        Level::Warn => "WARN",
        Level::Error => "ERROR",
    }
}

impl EngineLogger {
    /// Log to `file_path` (if any), rotated past `max_bytes` (0: never) keeping `keep` old files.
    pub fn new(file_path: Option<&Path>, min_level: Level, max_bytes: u64, keep: u32) -> std::io::Result<Self> {
        let file = match file_path {
            Some(p) => Some(LogFile::open(p, max_bytes, keep)?),
            None => None,
        };
        Ok(Self {
            min_level,
            file: Mutex::new(file),
            queue: Mutex::new(VecDeque::new()),
            dropped: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Log a line from the engine itself (not from LDK).
    pub fn engine(&self, level: Level, message: String) {
        self.push(level, "lsp_engine", message);
    }

    fn push(&self, level: Level, module: &str, message: String) {
        if level < self.min_level {
            return;
        }
        if let Some(f) = self.file.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            let ts = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            // A full disk must not stop the node; the queue still carries the line to Python.
            let _ = f.write_line(&format!("{ts:.3} {:<5} [{module}] {message}", level_name(level)));
        }
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= QUEUE_CAP {
            q.pop_front();
            self.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        q.push_back(LogLine { level: level_name(level), module: module.to_string(), message });
    }

    /// Take up to `max` queued lines, oldest first.
    pub fn drain(&self, max: usize) -> Vec<LogLine> {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let n = q.len().min(max);
        q.drain(..n).collect()
    }
}

/// LDK names a payment preimage in a few trace lines ("... with payment_preimage <hex>").
/// In any line that mentions a preimage or a secret, every 64-hex-digit run is replaced, so
/// neither the file nor the Python log can leak one (a hash in such a line goes too).
pub(crate) fn redact_secrets(message: String) -> String {
    let lower = message.to_ascii_lowercase();
    if !lower.contains("preimage") && !lower.contains("secret") {
        return message;
    }
    let bytes = message.as_bytes();
    let mut out = String::with_capacity(message.len());
    let mut i = 0;
    while i < bytes.len() {
        let run = bytes[i..].iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if run >= 64 {
            out.push_str("<redacted>");
            i += run;
        } else if run > 0 {
            out.push_str(&message[i..i + run]);
            i += run;
        } else {
            let ch = message[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8().max(1);
        }
    }
    out
}

impl Logger for EngineLogger {
    fn log(&self, record: Record) {
        if record.level < self.min_level {
            return;
        }
        self.push(record.level, record.module_path, redact_secrets(record.args.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preimages_are_redacted() {
        let p = "ab".repeat(32);
        let line = redact_secrets(format!("Received duplicative fulfill for HTLC with payment_preimage {p}"));
        assert!(!line.contains(&p) && line.ends_with("<redacted>"));
        let h = "cd".repeat(32);
        // Lines naming no secret keep their hashes (they are how an operator follows a payment).
        assert_eq!(redact_secrets(format!("forwarding {h}")), format!("forwarding {h}"));
        assert_eq!(redact_secrets("secret ü 12ab".into()), "secret ü 12ab");
    }

    #[test]
    fn log_rotates_by_size_and_keeps_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ldk.log");
        let logger = EngineLogger::new(Some(&path), Level::Info, 1_000, 2).unwrap();
        for i in 0..200 {
            logger.engine(Level::Info, format!("line {i:04} with some padding to fill the file"));
        }
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        assert!(size(&path) <= 1_000);
        let one = dir.path().join("ldk.log.1");
        let two = dir.path().join("ldk.log.2");
        assert!(size(&one) > 0 && size(&one) <= 1_000 && size(&two) > 0);
        assert!(!dir.path().join("ldk.log.3").exists());
        // The newest line is in the live file, the one before the rotation in .1.
        assert!(std::fs::read_to_string(&path).unwrap().contains("line 0199"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    }
}
