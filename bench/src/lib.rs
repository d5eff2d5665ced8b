//! Shared pieces of Keelson's benchmarks: process resource readings from `/proc`, and
//! result files in the shape `bench/README.md` describes.

pub mod fleet_env;
pub mod proc_stats;
pub mod results;
pub mod scenarios;
pub mod size_args;
