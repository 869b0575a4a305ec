fn main() -> std::process::ExitCode {
    fabrik::cli::main()
}
