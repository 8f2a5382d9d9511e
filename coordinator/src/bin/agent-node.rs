//! `agent-node`: joins a coordinator and hosts agents; everything is in `agent_node::cli`.

fn main() -> std::process::ExitCode {
    agent_node::cli::main()
}
