//! `fabrik`: the command line of the Fabrik deploy engine (`fabrik-engine`). Parsing,
//! rendering for humans or JSON, progress and exit codes live here; everything else is
//! the engine's.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
