//! What ships beside the product but is not part of it: the lab (namespaces and veths standing
//! for guests), the TestRun harness (the loaded program against the model), the fuzzer and the
//! benchmarks. Commands use them; the agent, the API, the data path, compile and the model never
//! do (a test checks no production module imports `crate::tools`).

pub mod bench;
pub mod fuzz;
pub mod lab;
pub mod testrun;
