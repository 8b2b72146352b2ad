//! `mzforge`: the engine on the command line.

mod cli;
mod inspect;
mod run;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // Parser failures inside third-party readers surface as panics that the engine catches and
    // turns into errors naming the file; keep the default hook from printing them as crashes.
    // Set MZFORGE_BACKTRACE=1 to see them.
    if std::env::var_os("MZFORGE_BACKTRACE").is_none() {
        std::panic::set_hook(Box::new(|_| {}));
    }
    let outcome = std::panic::catch_unwind(|| match args.command {
        cli::Command::Run(run_args) => run::run(*run_args),
        cli::Command::Inspect(inspect_args) => inspect::inspect(inspect_args),
        cli::Command::Batch(batch_args) => Ok(mzforge_batch_runner::batch::run(batch_args)),
    });
    match outcome {
        Ok(Ok(code)) => code,
        Ok(Err(error)) => {
            eprintln!("error: {}", chain(&error));
            ExitCode::from(1)
        }
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            // `println!` fails so when standard output is a pipe whose reader has gone
            // (`mzforge inspect data/ | head`): not a bug. Quiet, with the status of a process
            // that SIGPIPE ended (128 + 13), as other tools end there.
            if message.starts_with("failed printing to stdout") && message.contains("os error 32") {
                return ExitCode::from(141);
            }
            eprintln!("error: internal failure (a bug; please report it): {message}");
            ExitCode::from(70)
        }
    }
}

/// The whole error chain on one line: `outer: inner: root cause`.
pub(crate) fn chain(error: &anyhow::Error) -> String {
    error
        .chain()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}
