//! `mzforge`: the engine on the command line.

mod cli;
mod inspect;
mod run;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let outcome = match args.command {
        cli::Command::Run(run_args) => run::run(run_args),
        cli::Command::Inspect(inspect_args) => inspect::inspect(inspect_args),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", chain(&error));
            ExitCode::from(1)
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
