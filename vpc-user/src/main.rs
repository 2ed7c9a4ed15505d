/// The agent builds and compares large documents (100,000-route tables); mimalloc makes those
/// allocation-heavy passes markedly faster than glibc's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // Rust ignores SIGPIPE, so printing to a closed pipe (`vpc openapi | head -1`) is an EPIPE
    // error and println! panics. A command-line tool should end quietly as the pipe's reader
    // left: take the default action (the shell reports 141). `vpc daemon` ignores it again, as
    // a server must survive clients that hang up (see cli::run).
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match vpc::cli::main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
