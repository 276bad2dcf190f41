//! What /proc says of the server, the worker and this process: CPU time, resident memory, load.

use std::time::Duration;

use anyhow::Context;

pub(crate) struct Pids {
    pub(crate) server: u32,
    pub(crate) worker: u32,
}

pub(crate) struct Cpu {
    pub(crate) server: f64,
    pub(crate) worker: f64,
    pub(crate) bench: f64,
}

impl Cpu {
    pub(crate) fn since(&self, earlier: &Cpu) -> Cpu {
        Cpu {
            server: self.server - earlier.server,
            worker: self.worker - earlier.worker,
            bench: self.bench - earlier.bench,
        }
    }
}

impl Pids {
    pub(crate) fn cpu(&self) -> Cpu {
        Cpu {
            server: cpu_secs(self.server),
            worker: cpu_secs(self.worker),
            bench: cpu_secs(std::process::id()),
        }
    }
}

/// User plus system CPU time of a process (all threads), from /proc/<pid>/stat.
pub(crate) fn cpu_secs(pid: u32) -> f64 {
    // Linux reports these in USER_HZ, which is 100 on every architecture it ships for.
    const USER_HZ: f64 = 100.0;
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name, which may itself hold spaces: state is the first.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (tick(11), tick(12)) {
        (Some(user), Some(system)) => (user + system) / USER_HZ,
        _ => f64::NAN,
    }
}

/// A `kB` field of /proc/<pid>/status (VmHWM: peak resident set; VmRSS: current).
pub(crate) fn proc_status_kb(pid: u32, field: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in {path}"))
}

pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(crate) fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}
