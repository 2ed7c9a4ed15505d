//! Empty on purpose: the programs are in the `vpc-dataplane` binary (src/main.rs). This library
//! target only lets vpc-user list the crate as a build dependency, so cargo rebuilds the object
//! when the crate changes.
#![no_std]
