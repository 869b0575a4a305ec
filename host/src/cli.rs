//! The `fabrik` command line: argument parsing, dispatch, and rendering for humans or JSON.
//! Doc comments on the clap types are the `--help` text.

/// `println!` for command output: a closed stdout (`fabrik status | head -1`) ends the
/// output quietly instead of panicking (see `output`).
macro_rules! outln {
    () => {
        $crate::cli::output::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::line(format_args!($($arg)*))
    };
}

/// `eprintln!` for messages: `error:`, `hint:` and the like coloured on a terminal (see
/// `colour`), and no panic when stderr is closed.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::output::err_line(format_args!($($arg)*))
    };
}

mod apply;
mod colour;
mod destroy;
mod doctor;
mod exit;
mod gc;
mod history;
mod init;
mod loading;
mod new;
mod output;
mod plan;
mod progress;
mod promote;
mod providers;
mod render;
mod report;
mod rollback;
mod sources;
mod specs;
mod state;
mod status;
mod templates;
mod unlock;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use fabrik_engine::orchestrator::destroy::DestroyOptions;

pub use exit::ExitStatus;

/// Deploy web apps end to end from a small YAML spec: DNS, Coolify, HTTPS verification,
/// rollback.
#[derive(Debug, Parser)]
#[command(name = "fabrik", version, propagate_version = true, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,

    /// Log more (`-v` info, `-vv` debug); `FABRIK_LOG` takes a full filter
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    /// When to colour: on a terminal (`auto`, off with `NO_COLOR`), `always` or `never`
    #[arg(long, global = true, value_enum, default_value_t, value_name = "WHEN")]
    color: colour::ColorChoice,

    /// Never use the network for providers: OCI providers must be pinned in
    /// `fabrik.lock` and already in the local cache
    #[arg(long, global = true, env = "FABRIK_OFFLINE")]
    offline: bool,
}

const EXIT_CODES: &str = "\
Exit codes:
  0  success (with --detailed-exitcode: success and nothing to change)
  1  failure (a deploy failed or was rolled back, or an unexpected error)
  2  usage or validation error (bad arguments, invalid spec)
  3  with --detailed-exitcode: success, and the plan has changes
  130  interrupted (Ctrl-C): what was left and the command that recovers are printed";

/// Seconds, for flags.
fn seconds(n: u64) -> std::time::Duration {
    std::time::Duration::from_secs(n)
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make a directory a Fabrik project: write fabrik.toml (its name, in every owner
    /// tag) and add `.env` and `.fabrik/` to .gitignore
    Init {
        /// The project's name (asked on a terminal; default: the directory's)
        name: Option<String>,
        /// The project's directory (default: the current one)
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Check what an apply would meet, changing nothing: credentials, the server and its
    /// address, the DNS zone, the source, what exists at the spec's names
    Doctor(DoctorArgs),
    /// Write a new spec, NAME.yaml, from a template
    New(NewArgs),
    /// Check specs without deploying: schema, template, domain, compose
    Validate(ValidateArgs),
    /// List the templates a project can use
    Templates(OutputArgs),
    /// Deploy specs: DNS, Coolify, verification, rollback on failure
    Apply(ApplyArgs),
    /// Deploy an app's previous completed version again (see `fabrik history`)
    Rollback(RollbackArgs),
    /// Deploy to one environment exactly what another verified: the commit or image
    /// digest of its last run, which must have completed
    Promote(PromoteArgs),
    /// Show what `apply` would do, without changing anything (same as `apply --dry-run`)
    Plan(PlanArgs),
    /// Show or pin the project's provider plugins
    #[command(subcommand)]
    Providers(ProvidersCommand),
    /// Find resources tagged for this project that the state does not know (a lost state
    /// file, a killed run); `--delete` removes them
    Gc {
        /// Delete them (after re-checking each one's owner tag); their data is kept
        #[arg(long)]
        delete: bool,
        #[command(flatten)]
        env: EnvArgs,
        /// Do not ask for confirmation
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Delete the resources Fabrik created for an app (never anything it does not own)
    Destroy {
        /// The app's name
        name: String,
        #[command(flatten)]
        env: EnvArgs,
        /// Do not ask for confirmation
        #[arg(long)]
        yes: bool,
        /// Delete the app's data too: the volumes of its Coolify resource, which are
        /// kept otherwise
        #[arg(long)]
        purge: bool,
        /// How long to wait for each deletion to be finished (read back as gone), in seconds
        #[arg(long, default_value_t = 120, value_name = "SECONDS",
              value_parser = clap::value_parser!(u64).range(1..))]
        timeout: u64,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Show the state of deployed apps
    Status {
        /// Only this app
        name: Option<String>,
        #[command(flatten)]
        env: EnvArgs,
        /// Destroyed apps too (hidden otherwise, unless named)
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        state: StateArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// List the runs of an app, newest first
    History {
        /// The app's name
        name: String,
        #[command(flatten)]
        env: EnvArgs,
        #[command(flatten)]
        state: StateArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Release the lock of an app left by a process that died
    Unlock {
        /// The app's name
        name: String,
        #[command(flatten)]
        env: EnvArgs,
        /// With PostgreSQL state: end the session of a holder that is still connected
        /// (its run stops before its next provider call; the next apply recovers it)
        #[arg(long)]
        force: bool,
    },
    /// Inspect the state database
    #[command(subcommand)]
    State(StateCommand),
    /// Print a shell completion script
    Completions {
        /// The shell to complete for
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
enum ProvidersCommand {
    /// List the providers: role, name, version, source, contract version, sha256, kinds
    List(OutputArgs),
    /// Write `fabrik.lock`, pinning each provider's version and sha256 (and an OCI
    /// provider's manifest digest; a pinned tag that moved is reported, not followed)
    Lock,
    /// Move the pins of OCI providers (all, or the ROLEs named) to the newest tag matching
    /// their `version` requirement, and show what changed
    Update {
        /// Provider roles to update (`coolify`, `dns`); all when none is named
        roles: Vec<String>,
    },
    /// Run the provider kit: drive the ROLE's provider through a resource's life against
    /// its real or simulated API (apply, no-op, a hand edit repaired, gc after a lost
    /// state, destroy, a refused credential) and report each step
    Test(ProvidersTestArgs),
}

#[derive(Debug, Args)]
struct ProvidersTestArgs {
    /// The role whose provider to test (`dns`, `coolify`), configured as `fabrik.toml`
    /// says
    role: String,
    /// Test this component file instead of the one the project names (the role's
    /// config and credentials are kept)
    #[arg(long, value_name = "FILE")]
    component: Option<PathBuf>,
    /// The DNS record to create, update and delete (`dns` role), e.g.
    /// `fabrik-kit.example.com`: a name nothing else uses
    #[arg(long, value_name = "FQDN")]
    name: Option<String>,
    /// The spec whose Coolify resource to create (`coolify` role), renamed and served at
    /// its own domain so the app itself is never touched; it runs with the spec's plain
    /// `env` (random values for its secrets): use a spec whose app does no harm when run
    /// twice (no queue worker, no migration against a shared database)
    #[arg(long, value_name = "SPEC")]
    spec: Option<PathBuf>,
    /// A shell command that changes the resource by hand, as a person would (it gets
    /// FABRIK_KIT_KIND, FABRIK_KIT_ID and FABRIK_KIT_NAME); without it the hand-edit step
    /// is skipped, and said so
    #[arg(long, value_name = "COMMAND")]
    edit: Option<String>,
    /// Seconds a deployment may take (`coolify` role)
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    deploy_timeout: u64,
    #[command(flatten)]
    output: OutputArgs,
}

/// Which environment of an app (its spec's `environments:`) a command works on.
#[derive(Debug, Args, Clone, Default)]
struct EnvArgs {
    /// The environment of the app to work on (`staging`, `preview-123`); required by the
    /// commands that change something when the spec has environments
    #[arg(long = "env", value_name = "NAME")]
    env: Option<String>,
}

#[derive(Debug, Args)]
struct StateArgs {
    /// The state database (default: `.fabrik/state.db` in the project)
    #[arg(long = "state", value_name = "FILE", env = "FABRIK_STATE_DB")]
    path: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum StateCommand {
    /// Print the whole state as JSON (secret values are never stored)
    Export(StateArgs),
    /// Copy the whole state to the other backend (SQLite to PostgreSQL, or back); the
    /// source is left untouched and the copy is checked row by row
    Migrate {
        /// The backend to copy to (its `[state]` settings and `FABRIK_STATE_URL` say where)
        #[arg(long, value_enum)]
        to: BackendArg,
        #[command(flatten)]
        state: StateArgs,
    },
}

/// A state backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendArg {
    Sqlite,
    Postgres,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// Readable text
    #[default]
    Human,
    /// One JSON object per line (NDJSON) on stdout
    Json,
}

#[derive(Debug, Args)]
struct OutputArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

#[derive(Debug, Args)]
struct NewArgs {
    /// Template to start from (see `fabrik templates`)
    #[arg(long, short, value_hint = clap::ValueHint::Other)]
    template: String,
    /// App name: lowercase letters, digits and hyphens; the file is NAME.yaml
    #[arg(value_hint = clap::ValueHint::Other)]
    name: String,
    /// The app's public name (default: NAME.example.com, to be replaced)
    #[arg(long, value_hint = clap::ValueHint::Other)]
    domain: Option<String>,
    /// The Coolify server that runs the app (default: my-server, to be replaced)
    #[arg(long, value_hint = clap::ValueHint::Other)]
    server: Option<String>,
    /// Directory to write the spec into
    #[arg(long, default_value = ".", value_hint = clap::ValueHint::DirPath)]
    dir: PathBuf,
    /// Overwrite NAME.yaml if it exists
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
struct ValidateArgs {
    /// Spec files to check (default: `fabrik.yaml`, else every spec in the project's directory)
    specs: Vec<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Args)]
struct PlanArgs {
    /// Spec files to plan (default: `fabrik.yaml`, else every spec in the project's directory)
    specs: Vec<PathBuf>,
    /// Exit with 3 when the plan has changes, 0 when it has none
    #[arg(long)]
    detailed_exitcode: bool,
    #[command(flatten)]
    env: EnvArgs,
    #[command(flatten)]
    reach: ReachArgs,
    #[command(flatten)]
    state: StateArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Args)]
struct DoctorArgs {
    #[command(flatten)]
    env: EnvArgs,
    /// Spec files to check (default: the project's providers only)
    specs: Vec<PathBuf>,
    #[command(flatten)]
    reach: ReachArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Args)]
struct ApplyArgs {
    /// Spec files to deploy (default: `fabrik.yaml`, else every spec in the project's directory)
    specs: Vec<PathBuf>,
    /// Print the plan and stop: no provider is called, no credentials are needed
    #[arg(long)]
    dry_run: bool,
    /// How many specs to apply at the same time
    #[arg(long, default_value_t = 16, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    parallel: u16,
    /// With --dry-run: exit with 3 when the plan has changes, 0 when it has none
    #[arg(long, requires = "dry_run")]
    detailed_exitcode: bool,
    #[command(flatten)]
    env: EnvArgs,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Args)]
struct PromoteArgs {
    /// The app's name
    app: String,
    /// The environment whose last completed run is promoted (`staging`)
    #[arg(long, value_name = "ENV")]
    from: String,
    /// The environment that deploys it, with its own domain, env and secrets
    /// (`production`)
    #[arg(long, value_name = "ENV")]
    to: String,
    /// The app's spec (default: the project's spec whose `name` is the app)
    #[arg(long, value_name = "FILE")]
    spec: Option<PathBuf>,
    /// Print what moves and the plan, and stop: nothing is changed
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Args)]
struct RollbackArgs {
    /// The app's name
    name: String,
    /// Go back to this run (an id or its prefix, see `fabrik history`) instead of the
    /// previous completed version
    #[arg(long, value_name = "RUN")]
    to: Option<String>,
    #[command(flatten)]
    env: EnvArgs,
    #[command(flatten)]
    run: RunArgs,
}

/// How health checks and source resolution reach hosts (`apply`, `rollback`, `plan`).
#[derive(Debug, Clone, Args)]
struct ReachArgs {
    /// Connect to ADDR for HOST:PORT in health checks and source resolution, as curl's
    /// --resolve (ADDR may carry a port)
    #[arg(
        long,
        value_name = "HOST:PORT:ADDR",
        env = "FABRIK_RESOLVE",
        value_delimiter = ','
    )]
    resolve: Vec<fabrik_engine::orchestrator::verify::Resolve>,
    /// Also trust this CA (PEM) in health checks and source resolution
    #[arg(long, value_name = "FILE", env = "FABRIK_CA_FILE")]
    ca_file: Option<PathBuf>,
}

impl ReachArgs {
    fn verify_options(&self) -> fabrik_engine::orchestrator::verify::VerifyOptions {
        fabrik_engine::orchestrator::verify::VerifyOptions {
            resolve: self.resolve.clone(),
            ca_file: self.ca_file.clone(),
            lookup: Default::default(),
        }
    }
}

/// Options shared by everything that runs a deployment (`apply`, `rollback`).
#[derive(Debug, Args)]
struct RunArgs {
    /// On failure, leave everything in place instead of following the spec's rollback policy
    #[arg(long)]
    no_rollback: bool,
    /// Deploy again even when nothing changed: a new build of what the spec names (its
    /// branch or tag is resolved again first)
    #[arg(long)]
    redeploy: bool,
    /// Do not read live resources to detect drift before deciding there is nothing to do
    #[arg(long)]
    no_refresh: bool,
    /// How long to wait for another apply of the same app, in seconds
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    lock_timeout: u64,
    /// How long to wait for Coolify's deployment, in seconds
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    deploy_timeout: u64,
    #[command(flatten)]
    reach: ReachArgs,
    /// Progress display: a live line per app on a terminal, plain lines otherwise
    #[arg(long, value_enum, default_value_t)]
    progress: ProgressMode,
    #[command(flatten)]
    state: StateArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ProgressMode {
    /// A live line per app when stderr is a terminal (and `TERM` is not `dumb`), plain
    /// timed lines otherwise
    #[default]
    Auto,
    /// Always plain timed lines
    Plain,
}

/// Parses the command line, runs the command and maps its outcome to an exit code.
pub fn main() -> ExitCode {
    // `--use-orchestrator` is accepted and ignored, so commands from older docs keep
    // working; it is not an argument, so help and completion scripts never offer it.
    let cli = Cli::parse_from(std::env::args_os().filter(|a| a != "--use-orchestrator"));
    colour::init(cli.color);
    init_logging(cli.verbose);
    loading::set_offline(cli.offline);
    let status = match run(cli) {
        Ok(status) => status,
        Err(error) => {
            report::error(&error);
            ExitStatus::Failure
        }
    };
    status.into()
}

fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    // Commands that work in a project say once when it has no fabrik.toml (`plan` and
    // `apply` for their specs' projects, below).
    match &cli.command {
        Command::Init { .. }
        | Command::New(_)
        | Command::Validate(_)
        | Command::Templates(_)
        | Command::Completions { .. }
        | Command::Plan(_)
        | Command::Doctor(_)
        | Command::Apply(_) => {}
        _ => {
            if let Ok(root) = fabrik_engine::workspace::current_root() {
                init::warn_if_unnamed(&root);
            }
        }
    }
    let warn_for_specs = |specs: &[PathBuf]| {
        for spec in specs {
            init::warn_if_unnamed(&fabrik_engine::project::project_dir(spec));
        }
    };
    match cli.command {
        Command::Init { name, dir } => init::run(name.as_deref(), dir.as_deref()),
        Command::Doctor(args) => {
            if args.specs.is_empty()
                && let Ok(root) = fabrik_engine::workspace::current_root()
            {
                init::warn_if_unnamed(&root);
            }
            warn_for_specs(&args.specs);
            doctor::run(
                &args.specs,
                args.env.env.as_deref(),
                args.output.output,
                &args.reach.verify_options(),
            )
        }
        Command::New(args) => new::run(&args),
        Command::Validate(args) => match specs::or_found(&args.specs)? {
            Some(found) => validate::run(&found, args.output.output),
            None => Ok(ExitStatus::Invalid),
        },
        Command::Templates(args) => templates::run(&args),
        Command::Plan(args) => match specs::or_found(&args.specs)? {
            Some(found) => {
                warn_for_specs(&found);
                plan::run(
                    &found,
                    args.output.output,
                    args.detailed_exitcode,
                    args.env.env.as_deref(),
                    args.state.path.as_deref(),
                    &args.reach.verify_options(),
                )
            }
            None => Ok(ExitStatus::Invalid),
        },
        Command::Apply(mut args) => match specs::or_found(&args.specs)? {
            Some(found) => {
                warn_for_specs(&found);
                args.specs = found;
                apply::run(&args)
            }
            None => Ok(ExitStatus::Invalid),
        },
        Command::Rollback(args) => rollback::run(&args),
        Command::Promote(args) => promote::run(&args),
        Command::Unlock { name, env, force } => unlock::run(&name, env.env.as_deref(), force),
        Command::Destroy {
            name,
            env,
            yes,
            purge,
            timeout,
            state,
        } => destroy::run(
            &name,
            env.env.as_deref(),
            yes,
            DestroyOptions {
                purge,
                deletion_timeout: seconds(timeout),
            },
            state.path.as_deref(),
        ),
        Command::Gc {
            delete,
            env,
            yes,
            output,
            state,
        } => gc::run(
            delete,
            env.env.as_deref(),
            yes,
            output.output,
            state.path.as_deref(),
        ),
        Command::Status {
            name,
            env,
            all,
            state,
            output,
        } => status::run(
            name.as_deref(),
            env.env.as_deref(),
            all,
            output.output,
            state.path.as_deref(),
        ),
        Command::History {
            name,
            env,
            state,
            output,
        } => history::run(
            &name,
            env.env.as_deref(),
            output.output,
            state.path.as_deref(),
        ),
        Command::State(StateCommand::Export(args)) => state::export(args.path.as_deref()),
        Command::State(StateCommand::Migrate { to, state }) => {
            state::migrate(to == BackendArg::Postgres, state.path.as_deref())
        }
        Command::Providers(ProvidersCommand::List(args)) => providers::list(args.output),
        Command::Providers(ProvidersCommand::Lock) => providers::lock(),
        Command::Providers(ProvidersCommand::Update { roles }) => providers::update(&roles),
        Command::Providers(ProvidersCommand::Test(args)) => providers::test(providers::TestArgs {
            role: &args.role,
            component: args.component.as_deref(),
            name: args.name.as_deref(),
            spec: args.spec.as_deref(),
            edit: args.edit,
            deploy_timeout: std::time::Duration::from_secs(args.deploy_timeout),
            format: args.output.output,
        }),
        Command::Completions { shell } => {
            // Built-in template names for `new --template` (a project's own still parse).
            let templates = fabrik_engine::spec::template::builtin_names();
            let mut command = Cli::command().mut_subcommand("new", |new| {
                new.mut_arg("template", |arg| {
                    arg.value_parser(clap::builder::PossibleValuesParser::new(templates))
                })
            });
            clap_complete::generate(shell, &mut command, "fabrik", &mut std::io::stdout());
            Ok(ExitStatus::Success)
        }
    }
}

/// The async runtime a command's provider calls run on.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FABRIK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour::stderr())
        .with_target(false)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
