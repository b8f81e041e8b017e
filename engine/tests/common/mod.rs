#![allow(dead_code)] // each test crate uses a subset

pub mod data;
pub mod gpu;
pub mod lanes;
pub mod sig_cases;
