//! `murmur-agent`: the agent that runs at a subcloud and the fleet simulator. The protocol
//! and the simulator arrive with the agents issue; until then this binary only says so.

fn main() -> std::process::ExitCode {
    eprintln!(
        "murmur-agent {}: the agent protocol is not implemented yet; `murmur demo` seeds a static demo fleet",
        env!("CARGO_PKG_VERSION")
    );
    std::process::ExitCode::from(2)
}
