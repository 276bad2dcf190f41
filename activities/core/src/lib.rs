//! tmp
pub mod ports;
