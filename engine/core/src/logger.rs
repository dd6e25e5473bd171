//! LDK's log records go to a file in the data directory and into a bounded in-memory queue that
//! Python drains in batches, so no log line ever needs the GIL.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
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

pub struct EngineLogger {
    min_level: Level,
    file: Mutex<Option<BufWriter<File>>>,
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
    pub fn new(file_path: Option<&Path>, min_level: Level) -> std::io::Result<Self> {
        let file = match file_path {
            Some(p) => Some(BufWriter::new(OpenOptions::new().create(true).append(true).open(p)?)),
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
            let _ = writeln!(f, "{ts:.3} {:<5} [{module}] {message}", level_name(level));
            let _ = f.flush();
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

impl Logger for EngineLogger {
    fn log(&self, record: Record) {
        self.push(record.level, record.module_path, record.args.to_string());
    }
}
