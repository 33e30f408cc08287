fn main() -> std::process::ExitCode {
    issuebridge_server::cli::run()
}
