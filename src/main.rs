//! The `flowboard` binary: parses the command line and runs a subcommand.

use clap::Parser;
use flowboard::config::{Cli, Command, Config, LogFormat};

/// jemalloc rather than glibc's malloc: see the note on the dependency in `Cargo.toml`.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            init_logging(args.log_format);
            let config = match Config::from_args(*args) {
                Ok(config) => config,
                Err(error) => {
                    // A mistake in the command line, not a crash: no backtrace.
                    eprintln!("flowboard: {error}");
                    std::process::exit(2);
                }
            };
            flowboard::server::serve(config)
        }
        Command::Broker(args) => {
            init_logging(LogFormat::Text);
            flowboard::server::broker(args)
        }
    }
}

/// Logs to stderr, human-readable or JSON, level from `RUST_LOG` (default `info`).
fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
