use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let cli = vpc::cli::Cli::parse();
    match vpc::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
