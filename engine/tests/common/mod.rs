#![allow(dead_code)] // each test crate uses a subset

pub mod gpu;
pub mod lanes;
pub mod shared;
pub mod sig_cases;
