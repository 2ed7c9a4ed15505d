//! The deterministic generator of the randomized tests: the one the fuzzer uses.

pub use vpc::tools::fuzz::Rng;
