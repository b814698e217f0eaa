//! The command line: `serve` (the default), `accounts create`, `credits add`, `openapi`,
//! `routes`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::{LocalConfig, open_stack};

#[derive(Debug, Parser)]
#[command(
    name = "zerodb-local",
    version,
    about = "ZeroDB on your machine: every API on one port, durable embedded storage"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(
        long,
        env = "ZERODB_ADDR",
        default_value = "127.0.0.1:3000",
        global = true
    )]
    addr: SocketAddr,
    /// Where data lives (created if missing).
    #[arg(
        long,
        env = "ZERODB_DATA_DIR",
        default_value = "./.zerodb",
        global = true
    )]
    data_dir: PathBuf,
    /// Requests per key per minute; 0 turns the limit off.
    #[arg(long, env = "ZERODB_RATE_LIMIT_PER_MINUTE", default_value_t = zerodb_domain::auth::DEFAULT_RATE_LIMIT_PER_MINUTE, global = true)]
    rate_limit_per_minute: u32,
    /// The inference providers file (TOML: `[providers.<name>]`, `[aliases]`; see the
    /// README). Without one, the built-in aliases with keys from ANTHROPIC_API_KEY,
    /// NVIDIA_API_KEY and CEREBRAS_API_KEY.
    #[arg(long, env = "ZERODB_PROVIDERS", global = true)]
    providers: Option<PathBuf>,
    /// Inference credits each account starts with, in US dollars at list prices; unset,
    /// credits are unlimited.
    #[arg(long, env = "ZERODB_CREDITS_USD", global = true)]
    credits_usd: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve every API (the default).
    Serve,
    /// Manage accounts.
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
    },
    /// Manage inference credits.
    Credits {
        #[command(subcommand)]
        command: CreditsCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Print every route and the handler that serves it.
    Routes,
}

#[derive(Debug, Subcommand)]
enum CreditsCommand {
    /// Add credits (US dollars at list prices) to an account.
    Add {
        #[arg(long)]
        account: String,
        #[arg(long)]
        usd: f64,
        #[arg(long, value_enum, default_value = "embedded")]
        backend: Backend,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Backend {
    /// The data directory (works while a server runs on it).
    Embedded,
    /// DynamoDB: the table named by ZERODB_TABLE, with the usual AWS_* settings.
    Aws,
}

#[derive(Debug, Subcommand)]
enum AccountsCommand {
    /// Create an account and print its root key (shown once).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value = "embedded")]
        backend: Backend,
    },
}

pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.serve).await,
        Command::Openapi => {
            println!("{}", crate::openapi_document().to_pretty_json()?);
            Ok(())
        }
        Command::Routes => {
            let routes = crate::route_index();
            let width = routes
                .iter()
                .map(|(_, r)| r.method.len() + 1 + r.path.len())
                .max()
                .unwrap_or(0);
            for (_, r) in routes {
                let route = format!("{} {}", r.method, r.path);
                println!("{route:<width$}  ->  {}", r.handler);
            }
            Ok(())
        }
        Command::Credits {
            command:
                CreditsCommand::Add {
                    account,
                    usd,
                    backend,
                },
        } => {
            anyhow::ensure!(
                usd.is_finite() && usd > 0.0,
                "--usd must be a positive number of US dollars; got {usd}"
            );
            let table = table_of(backend, &cli.serve.data_dir).await?;
            let accounting = zerodb_inference::accounting::Accounting::new(
                table,
                Arc::new(zerodb_domain::clock::SystemClock),
                // Adding does not depend on the policy.
                zerodb_inference::accounting::CreditPolicy::Unlimited,
            );
            accounting
                .add_credits(&account, zerodb_inference::accounting::usd_to_micro(usd))
                .await?;
            println!("added {usd} credits to account {account}");
            Ok(())
        }
        Command::Accounts {
            command: AccountsCommand::Create { name, backend },
        } => {
            let table = table_of(backend, &cli.serve.data_dir).await?;
            let account = crate::create_account(table, &name).await?;
            println!("account_id: {}", account.account_id);
            println!("root_key_id: {}", account.root_key_id);
            println!("root_key: {}", account.root_key.expose());
            eprintln!("Store the root key now: it is shown only once.");
            Ok(())
        }
    }
}

/// The table an operator command works on.
async fn table_of(
    backend: Backend,
    data_dir: &std::path::Path,
) -> anyhow::Result<Arc<dyn zerodb_domain::store::Table>> {
    Ok(match backend {
        Backend::Embedded => open_stack(data_dir)?.stores.table,
        Backend::Aws => {
            let table = std::env::var("ZERODB_TABLE")
                .context("ZERODB_TABLE must name the DynamoDB table")?;
            let clients = zerodb_store_aws::AwsClients::from_env().await;
            Arc::new(zerodb_store_aws::AwsTable::new(clients.dynamodb, table))
        }
    })
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let data_dir = std::path::absolute(&args.data_dir).unwrap_or(args.data_dir);
    let mut settings = crate::local_settings();
    if let Some(p) = &args.providers {
        settings = settings.with("ZERODB_PROVIDERS", p.display().to_string());
    }
    if let Some(c) = &args.credits_usd {
        settings = settings.with("ZERODB_CREDITS_USD", c.clone());
    }
    let running = crate::start(LocalConfig {
        addr: args.addr,
        data_dir: data_dir.clone(),
        rate_limit_per_minute: args.rate_limit_per_minute,
        settings,
    })
    .await?;
    println!(
        "ZeroDB local {} listening on http://{}",
        env!("CARGO_PKG_VERSION"),
        running.addr
    );
    println!(
        "  data:     {} (SQLite, WAL, fsync on commit)",
        data_dir.display()
    );
    println!("  openapi:  http://{}/openapi.json", running.addr);
    println!("  embedder: {}", running.embedder);
    let providers: Vec<String> = running
        .providers
        .iter()
        .map(|(name, ready)| format!("{name}{}", if *ready { "" } else { " (no key)" }))
        .collect();
    println!("  inference providers: {}", providers.join(", "));
    println!(
        "  instant-db: {}",
        match (
            running.instant_db,
            running.addr.ip().to_canonical().is_loopback()
        ) {
            (true, true) => "on (this machine only; ZERODB_INSTANT_DB=off turns it off)",
            (true, false) => "ON: anyone who reaches this address can create accounts",
            (false, true) => "off",
            (false, false) => "off (not a loopback address; ZERODB_INSTANT_DB=on turns it on)",
        }
    );
    match &running.new_root_key {
        Some(key) => {
            println!("  root key: {key}");
            println!(
                "            (shown once; also saved to {}, mode 0600)",
                data_dir.join(crate::ROOT_KEY_FILE).display()
            );
        }
        None => println!(
            "  root key: in {}",
            data_dir.join(crate::ROOT_KEY_FILE).display()
        ),
    }
    println!("ready (Ctrl-C to stop)");
    shutdown_signal().await;
    println!("shutting down: finishing in-flight requests");
    running.stop().await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        tokio::signal::ctrl_c().await.ok();
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
