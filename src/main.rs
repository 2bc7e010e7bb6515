//! The `flowboard` binary: parses the command line and runs a subcommand.

use clap::Parser;
use flowboard::config::{Cli, Command, Config, LogFormat};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let config = Config::from_args(args)?;
            init_logging(config.log_format);
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
