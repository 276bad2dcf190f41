//! tmp
#[cfg(feature = "testing")]
pub mod port_suites;
pub mod ports;
