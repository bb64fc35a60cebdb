//! `xcat3-sim`: a fleet of simulated BMCs for tests, demos and benchmarks.
//! The IPMI and Redfish fleets arrive with their drivers; until then this
//! binary refuses to start rather than pretend to work.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("xcat3-sim: no simulated BMC kinds in this build yet");
    ExitCode::FAILURE
}
