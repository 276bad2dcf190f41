//! The AWS adapters against a real moto server. One binary (linking the AWS SDK once), one moto
//! per test so tests can run in parallel without sharing state.
//!
//! Where moto falls short of AWS, the test says so and asserts moto's actual behaviour, so a moto
//! upgrade that closes the gap makes the test fail and points at what to tighten.

mod athena;
mod batch;
mod config;
mod glue;
mod glue_tables;
mod harness {
    pub use lakegate_aws::testing::*;
}
mod router;
mod s3;
