//! Command line: `murmur serve | demo | migrate`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use engine::fleet::demo;
use engine::Engine;

use crate::config::{Config, FileConfig, HealthSettings, LogFormat};
use crate::startup::Application;
use crate::telemetry;

/// Murmuration system controller: dashboard, REST API and the engine behind them.
#[derive(Debug, Parser)]
#[command(name = "murmur", version, about, propagate_version = true)]
pub struct Cli {
    /// TOML configuration file (keys: listen, database_url, site_root, log_format).
    #[arg(long, global = true, env = "MURMUR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller.
    Serve(ServeArgs),
    /// Seed a deterministic demo fleet (idempotent) and run the controller on it.
    Demo(DemoArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate(StoreArgs),
    /// Manage local users.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from a prompt (or from stdin when piped).
    Add {
        /// Login name.
        name: String,
        /// admin, operator or viewer.
        #[arg(long, default_value = "viewer")]
        role: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Create an API token for a user and print it once (for scripts and the simulator).
    Token {
        /// The user the token acts as (with that user's role).
        name: String,
        /// What the token is for, shown on the account page.
        #[arg(long, default_value = "cli")]
        label: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Database: sqlite://PATH (embedded, created on first start) or postgres://USER@HOST/DB.
    #[arg(long, env = "MURMUR_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// Log format.
    #[arg(long, env = "MURMUR_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "MURMUR_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Directory with the built browser bundle (pkg/) and static files.
    #[arg(long, env = "MURMUR_SITE_ROOT", value_name = "DIR")]
    pub site_root: Option<PathBuf>,
    /// URL browsers use to reach this controller, e.g. https://noc.example.com (default:
    /// http:// and the listen address).
    #[arg(long, env = "MURMUR_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// A session ends after this many seconds without a request.
    #[arg(long, env = "MURMUR_SESSION_IDLE_SECONDS", value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=2_592_000))]
    pub session_idle_seconds: Option<u64>,
    /// A session ends this many seconds after login, whatever the activity.
    #[arg(long, env = "MURMUR_SESSION_ABSOLUTE_SECONDS", value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub session_absolute_seconds: Option<u64>,
    /// This controller's name as agents see it.
    #[arg(long, env = "MURMUR_CONTROLLER_NAME", value_name = "NAME")]
    pub controller_name: Option<String>,
    /// How often agents report.
    #[arg(long, env = "MURMUR_REPORT_INTERVAL_MS", value_name = "MS", value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub report_interval_ms: Option<u64>,
    /// Missed report intervals before a subcloud is declared offline.
    #[arg(long, env = "MURMUR_OFFLINE_AFTER_MISSED", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub offline_after_missed: Option<u32>,
    /// Consecutive good reports before an offline subcloud is declared online again.
    #[arg(long, env = "MURMUR_ONLINE_AFTER_REPORTS", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub online_after_reports: Option<u32>,
    /// How often received reports are written and silent subclouds looked for.
    #[arg(long, env = "MURMUR_HEALTH_TICK_MS", value_name = "MS", value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub health_tick_ms: Option<u64>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of demo subclouds (1 to 20000).
    #[arg(long, default_value_t = demo::DEFAULT_SUBCLOUDS, value_parser = clap::value_parser!(u32).range(1..=i64::from(demo::MAX_SUBCLOUDS)))]
    pub subclouds: u32,
    /// Do not run the fleet simulator (the fleet then stays as seeded, with one finished
    /// strategy for the orchestration pages to show).
    #[arg(long)]
    pub no_simulator: bool,
    /// Address of the in-process simulator's control API (fault injection; see README).
    #[arg(
        long,
        env = "MURMUR_SIM_CONTROL",
        value_name = "ADDR",
        default_value = "127.0.0.1:3001"
    )]
    pub sim_control: SocketAddr,
    /// Seed of the simulated fleet's behaviour.
    #[arg(long, default_value_t = 1)]
    pub sim_seed: u64,
    /// Run one controller managing the whole fleet instead of three peer controllers
    /// (sc-amsterdam here, sc-dallas and sc-singapore on free local ports, each with its own
    /// store) that take over each other's peer groups.
    #[arg(long)]
    pub single_controller: bool,
    /// Heartbeat interval between the demo's peer controllers.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1000..=600_000))]
    pub heartbeat_interval_ms: u64,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Flags and environment over the file over the defaults.
fn resolve(
    file: FileConfig,
    serve: Option<&ServeArgs>,
    store: &StoreArgs,
    default_db: &str,
) -> anyhow::Result<Config> {
    let listen = serve.and_then(|s| s.listen).or(file.listen).unwrap_or(
        Config::DEFAULT_LISTEN
            .parse()
            .context("default listen address")?,
    );
    let geo = file.geo.clone();
    Ok(Config {
        geo,
        demo: false,
        listen,
        database_url: store
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| default_db.to_string()),
        site_root: serve
            .and_then(|s| s.site_root.clone())
            .or(file.site_root)
            .unwrap_or_else(|| PathBuf::from(Config::DEFAULT_SITE_ROOT)),
        log_format: store.log_format.or(file.log_format).unwrap_or_default(),
        public_url: match serve.and_then(|s| s.public_url.clone()).or(file.public_url) {
            Some(u) => {
                crate::config::origin_of(&u)
                    .with_context(|| format!("public_url {u:?} is not an http(s) URL"))?;
                Some(u)
            }
            None => None,
        },
        session: engine::auth::SessionPolicy {
            idle: std::time::Duration::from_secs(
                serve
                    .and_then(|s| s.session_idle_seconds)
                    .or(file.session_idle_seconds)
                    .unwrap_or(Config::DEFAULT_SESSION_IDLE_SECONDS),
            ),
            absolute: std::time::Duration::from_secs(
                serve
                    .and_then(|s| s.session_absolute_seconds)
                    .or(file.session_absolute_seconds)
                    .unwrap_or(Config::DEFAULT_SESSION_ABSOLUTE_SECONDS),
            ),
        },
        health: {
            let d = HealthSettings::default();
            let h = HealthSettings {
                controller_name: serve
                    .and_then(|s| s.controller_name.clone())
                    .or(file.controller_name)
                    .unwrap_or(d.controller_name),
                report_interval_ms: serve
                    .and_then(|s| s.report_interval_ms)
                    .or(file.report_interval_ms)
                    .unwrap_or(d.report_interval_ms),
                offline_after_missed: serve
                    .and_then(|s| s.offline_after_missed)
                    .or(file.offline_after_missed)
                    .unwrap_or(d.offline_after_missed),
                online_after_reports: serve
                    .and_then(|s| s.online_after_reports)
                    .or(file.online_after_reports)
                    .unwrap_or(d.online_after_reports),
                tick_ms: serve
                    .and_then(|s| s.health_tick_ms)
                    .or(file.health_tick_ms)
                    .unwrap_or(d.tick_ms),
            };
            anyhow::ensure!(
                (100..=3_600_000).contains(&h.report_interval_ms)
                    && (1..=100).contains(&h.offline_after_missed)
                    && (1..=100).contains(&h.online_after_reports)
                    && (50..=60_000).contains(&h.tick_ms),
                "health settings out of range: report_interval_ms 100..=3600000, offline_after_missed and online_after_reports 1..=100, health_tick_ms 50..=60000"
            );
            engine::fleet::SubcloudName::parse(&h.controller_name)
                .map_err(|e| anyhow::anyhow!("controller_name: {}", e.message))?;
            h
        },
    })
}

/// Runs one command to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let file = match &cli.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    match cli.command {
        Command::Migrate(store) => {
            let config = resolve(file, None, &store, Config::DEFAULT_DATABASE_URL)?;
            telemetry::init(config.log_format);
            let engine = open(&config).await?;
            tracing::info!(
                backend = engine.store().backend().as_str(),
                "schema is up to date"
            );
            Ok(())
        }
        Command::User(UserCommand::Add { name, role, store }) => {
            let config = resolve(file, None, &store, Config::DEFAULT_DATABASE_URL)?;
            telemetry::init(config.log_format);
            let role: engine::auth::Role = role
                .parse()
                .map_err(|e: engine::ValidationError| anyhow::anyhow!(e.message))?;
            let password = read_password(&name)?;
            let engine = open(&config).await?;
            let user = engine
                .create_user(&engine::auth::Actor::system(), &name, &password, role)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("created user {} with role {}", user.name, user.role);
            Ok(())
        }
        Command::User(UserCommand::Token { name, label, store }) => {
            let config = resolve(file, None, &store, Config::DEFAULT_DATABASE_URL)?;
            telemetry::init(config.log_format);
            let engine = open(&config).await?;
            let user = engine
                .list_users(&engine::auth::Actor::system())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .into_iter()
                .find(|u| u.name == name)
                .with_context(|| format!("no user named {name:?}"))?;
            anyhow::ensure!(!user.disabled, "user {name:?} is disabled");
            let token = engine
                .create_api_token(&engine::auth::Actor::user(&user, None), &label)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", token.secret);
            Ok(())
        }
        Command::Serve(args) => {
            let config = resolve(file, Some(&args), &args.store, Config::DEFAULT_DATABASE_URL)?;
            telemetry::init(config.log_format);
            let engine = open(&config).await?;
            serve(config, engine).await
        }
        Command::Demo(args) => {
            let named = args.serve.controller_name.is_some() || file.controller_name.is_some();
            let mut config = resolve(
                file,
                Some(&args.serve),
                &args.serve.store,
                "sqlite://murmur-demo.db",
            )?;
            if !named {
                // The demo controller plays the Amsterdam system controller of the demo fleet.
                config.health.controller_name = "sc-amsterdam".into();
            }
            telemetry::init(config.log_format);
            let engine = open(&config).await?;
            let started = std::time::Instant::now();
            let report = engine
                .seed_demo(args.subclouds)
                .await
                .context("seeding the demo fleet")?;
            let users = engine
                .ensure_demo_users()
                .await
                .context("creating the demo users")?;
            if users > 0 {
                tracing::warn!(
                    "demo users created with the fixed passwords from the README: admin, operator, viewer (demo only)"
                );
            }
            tracing::info!(
                subclouds = report.subclouds,
                added = report.added,
                removed = report.removed,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "demo fleet ready"
            );
            if args.no_simulator {
                // No agent will ever run a step here: one strategy finished at seeding gives
                // the orchestration pages a rollout to show (seeded once; idempotent).
                match engine
                    .seed_demo_strategy()
                    .await
                    .context("seeding the demo strategy")?
                {
                    Some(s) if s.state.is_terminal() => tracing::info!(
                        id = s.id,
                        state = %s.state,
                        created = s.created,
                        "demo strategy ready"
                    ),
                    Some(s) => tracing::warn!(
                        id = s.id,
                        state = %s.state,
                        "the demo strategy did not finish at seeding; the orchestrator goes on with it"
                    ),
                    None => tracing::info!(
                        "no demo strategy: the fleet has no site it targets (too few subclouds)"
                    ),
                }
                return serve(config, engine).await;
            }
            if !args.single_controller {
                return run_peer_demo(config, engine, &args).await;
            }
            let app = Application::build(&config, engine.clone()).await?;
            start_health(&config, &engine, app.public_origin()).await?;
            let sim = start_simulator(&engine, &config, &app, &args).await?;
            tracing::info!(url = %format!("http://{}", app.local_addr()), control = %args.sim_control, "murmur demo is serving, with the fleet simulator");
            let served = app.run_until_stopped().await;
            sim.shutdown().await;
            served
        }
    }
}

async fn open(config: &Config) -> anyhow::Result<Engine> {
    let engine = Engine::open(&config.database_url)
        .await
        .with_context(|| format!("opening the store at {}", redact(&config.database_url)))?;
    Ok(engine)
}

/// Reads a new password from the terminal without echo, or one line from piped stdin.
fn read_password(name: &str) -> anyhow::Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("password for {name}: "))?;
        let again = rpassword::prompt_password("again: ")?;
        anyhow::ensure!(first == again, "the passwords differ");
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}

async fn serve(config: Config, engine: Engine) -> anyhow::Result<()> {
    let app = Application::build(&config, engine.clone()).await?;
    start_health(&config, &engine, app.public_origin()).await?;
    if let Some(secret) = engine.issue_setup_token().await? {
        tracing::warn!(
            url = %format!("{}/setup?token={secret}", app.public_origin()),
            "no user exists yet: open this one-time link (valid 24 h) to create the first admin, or run `murmur user add --role admin NAME`"
        );
    }
    tracing::info!(url = %format!("http://{}", app.local_addr()), site_root = %config.site_root.display(), "murmur is serving");
    app.run_until_stopped().await
}

/// Runs one simulated agent per demo subcloud against this controller, over real HTTP.
/// Subclouds the demo seeded offline (the regional outage and a few scattered sites) are
/// kept down in the simulator, so the fleet tells the same story live.
async fn start_simulator(
    engine: &Engine,
    config: &Config,
    app: &Application,
    args: &DemoArgs,
) -> anyhow::Result<agent::sim::SimHandle> {
    use agent::sim::{Fault, Selector, SimConfig, Simulator, SiteSpec};
    let system = engine::auth::Actor::system();
    let seeded_offline = seeded_offline(engine).await?;
    let enrollments = engine
        .issue_enrollments(
            &system,
            &engine::agents::EnrollmentRequest {
                subclouds: vec![],
                all: true,
            },
        )
        .await
        .context("issuing enrollment tokens for the simulator")?;
    let coords = engine
        .controllers()
        .await?
        .into_iter()
        .map(|c| (c.name, c.lat, c.lon))
        .collect();
    let sites: Vec<SiteSpec> = enrollments.into_iter().map(SiteSpec::from).collect();
    let sim = Simulator::start(
        SimConfig {
            controllers: vec![engine::agents::wire::ControllerRef {
                name: config.health.controller_name.clone(),
                url: format!("http://{}", app.local_addr()),
            }],
            controller_coords: coords,
            seed: args.sim_seed,
            control_listen: Some(args.sim_control),
            ..Default::default()
        },
        sites,
    )
    .await
    .context("starting the fleet simulator")?;
    let down = sim.apply(Fault::Down, Selector::Sites(seeded_offline));
    tracing::info!(
        sites_down = down,
        "simulated outage: the subclouds seeded offline stay down"
    );
    Ok(sim)
}

/// Subclouds the demo seeded offline (the regional outage and a few scattered sites): the
/// simulator keeps them down, so the fleet tells the same story live.
async fn seeded_offline(engine: &Engine) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    let mut q = engine::fleet::SubcloudQuery {
        availability: Some(engine::fleet::AvailabilityStatus::Offline),
        per_page: engine::fleet::SubcloudQuery::MAX_PER_PAGE,
        ..Default::default()
    };
    loop {
        let page = engine.list_subclouds(&q).await?;
        let more = page.page < page.page_count();
        names.extend(page.rows.into_iter().map(|r| r.name));
        if !more {
            break;
        }
        q.page += 1;
    }
    Ok(names)
}

/// The store of a demo peer controller, next to the main one's.
fn peer_database_url(main: &str, name: &str) -> String {
    match main.strip_prefix("sqlite://") {
        Some(path) => {
            let (path, query) = path.split_once('?').map_or((path, ""), |(p, q)| (p, q));
            let stem = path.strip_suffix(".db").unwrap_or(path);
            let q = if query.is_empty() {
                String::new()
            } else {
                format!("?{query}")
            };
            format!("sqlite://{stem}-{name}.db{q}")
        }
        None => format!("sqlite://murmur-demo-{name}.db"),
    }
}

fn random_secret() -> String {
    use rand::RngCore;
    let mut b = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `murmur demo` with geo-redundancy: three real peer controllers in this process, each with
/// its own store and HTTP listener, heartbeating and replicating over HTTP, and the simulated
/// fleet reporting to each site's owner.
async fn run_peer_demo(config: Config, main: Engine, args: &DemoArgs) -> anyhow::Result<()> {
    use engine::fleet::demo::CONTROLLERS;
    let main_name = config.health.controller_name.clone();
    anyhow::ensure!(
        CONTROLLERS.iter().any(|c| c.name == main_name),
        "the peer demo plays one of the demo controllers, not {main_name:?}"
    );
    // Read before any agent reports: the seeded state, the same in every store.
    let seeded_offline = seeded_offline(&main).await?;
    let mut nodes: Vec<(String, Config, Engine)> = Vec::new();
    for c in &CONTROLLERS {
        let mut cfg = config.clone();
        cfg.health.controller_name = c.name.to_string();
        cfg.demo = true;
        let engine = if c.name == main_name {
            main.clone()
        } else {
            cfg.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
            cfg.public_url = None;
            cfg.database_url = peer_database_url(&config.database_url, c.name);
            let e = open(&cfg).await?;
            e.seed_demo(args.subclouds)
                .await
                .with_context(|| format!("seeding {}", c.name))?;
            e.ensure_demo_users().await?;
            e
        };
        nodes.push((c.name.to_string(), cfg, engine));
    }
    let mut apps = Vec::new();
    for (_, cfg, engine) in &nodes {
        apps.push(Application::build(cfg, engine.clone()).await?);
    }
    // One secret per pair of controllers.
    let mut secrets = std::collections::HashMap::new();
    for (a, _, _) in &nodes {
        for (b, _, _) in &nodes {
            if a < b {
                secrets.insert((a.clone(), b.clone()), random_secret());
            }
        }
    }
    let secret = |a: &str, b: &str| {
        let key = if a < b {
            (a.to_string(), b.to_string())
        } else {
            (b.to_string(), a.to_string())
        };
        secrets.get(&key).cloned().unwrap_or_default()
    };
    let capacity = main
        .controllers()
        .await?
        .into_iter()
        .map(|c| (c.name, (c.capacity, c.reserved_capacity)))
        .collect::<std::collections::HashMap<_, _>>();
    for (k, (name, cfg, engine)) in nodes.iter_mut().enumerate() {
        let (cap, reserve) = capacity.get(name.as_str()).copied().unwrap_or((1000, 100));
        cfg.geo = Some(crate::config::GeoFileConfig {
            capacity: cap,
            reserved_capacity: reserve,
            heartbeat_interval_ms: args.heartbeat_interval_ms,
            heartbeat_failure_threshold: 3,
            heartbeat_failure_policy: "rehome".into(),
            delegate_to: None,
            heartbeat_maintenance_timeout_s: 600,
            quorum_percent: 50,
            evidence_window_ms: None,
            resync_ms: 5_000,
            failback_hold_down_s: 0,
            peers: apps
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != k)
                .map(|(j, app)| crate::config::GeoPeerFileConfig {
                    name: CONTROLLERS[j].name.to_string(),
                    url: format!("http://{}", app.local_addr()),
                    secret: secret(name, CONTROLLERS[j].name),
                })
                .collect(),
        });
        start_health(cfg, engine, apps[k].public_origin()).await?;
    }
    // The simulator enrolls each site with its owner, using that owner's token.
    let system = engine::auth::Actor::system();
    let mut sites = Vec::new();
    for (name, _, engine) in &nodes {
        let enrollments = engine
            .issue_enrollments(
                &system,
                &engine::agents::EnrollmentRequest {
                    subclouds: vec![],
                    all: true,
                },
            )
            .await?;
        sites.extend(
            enrollments
                .into_iter()
                .filter(|e| &e.controller == name)
                .map(agent::sim::SiteSpec::from),
        );
    }
    let coords = main
        .controllers()
        .await?
        .into_iter()
        .map(|c| (c.name, c.lat, c.lon))
        .collect();
    let controllers = nodes
        .iter()
        .zip(&apps)
        .map(|((name, _, _), app)| engine::agents::wire::ControllerRef {
            name: name.clone(),
            url: format!("http://{}", app.local_addr()),
        })
        .collect();
    let sim = agent::sim::Simulator::start(
        agent::sim::SimConfig {
            controllers,
            controller_coords: coords,
            seed: args.sim_seed,
            control_listen: Some(args.sim_control),
            ..Default::default()
        },
        sites,
    )
    .await
    .context("starting the fleet simulator")?;
    let down = sim.apply(
        agent::sim::Fault::Down,
        agent::sim::Selector::Sites(seeded_offline),
    );
    tracing::info!(
        sites_down = down,
        "simulated outage: the subclouds seeded offline stay down"
    );
    for ((name, _, _), app) in nodes.iter().zip(&apps) {
        tracing::info!(controller = %name, url = %format!("http://{}", app.local_addr()), "demo peer controller serving");
    }
    tracing::info!(control = %args.sim_control, "murmur demo is serving three peer controllers with the fleet simulator");
    let mut running = Vec::new();
    for app in apps {
        running.push(tokio::spawn(app.run_until_stopped()));
    }
    // The first to stop (Ctrl-C stops all) ends the demo.
    let (first, _, _) = futures::future::select_all(running).await;
    sim.shutdown().await;
    first.context("controller task")?
}

/// Starts taking agent reports and the health monitor.
pub async fn start_health(
    config: &Config,
    engine: &Engine,
    public_origin: &str,
) -> anyhow::Result<()> {
    let h = &config.health;
    let policy = engine::agents::IntakePolicy {
        hysteresis: engine::health::HysteresisPolicy {
            interval_ms: i64::try_from(h.report_interval_ms).unwrap_or(10_000),
            offline_after_missed: h.offline_after_missed,
            online_after_reports: h.online_after_reports,
        },
        tick: std::time::Duration::from_millis(h.tick_ms),
        this_controller: engine::agents::wire::ControllerRef {
            name: h.controller_name.clone(),
            url: public_origin.to_string(),
        },
        ..Default::default()
    };
    engine
        .start_agent_gateway(policy)
        .await
        .context("starting the agent gateway")?;
    engine.spawn_health_monitor()?;
    if let Some(geo) = &config.geo {
        let geo = geo.to_engine(
            &h.controller_name,
            public_origin,
            h.report_interval_ms,
            config.demo,
        )?;
        let timeout = std::time::Duration::from_millis(geo.heartbeat.interval_ms.max(1_000));
        let tick =
            std::time::Duration::from_millis((geo.heartbeat.interval_ms / 4).clamp(100, 1_000));
        let link = crate::peers::HttpPeerLink::new(&h.controller_name, timeout)?;
        engine
            .start_geo(geo, link)
            .await
            .context("starting geo-redundancy")?;
        engine::georedundancy::spawn_peer_loop(engine.clone(), tick);
    }
    // Wakes when the health monitor stores step progress or an operator acts; the period
    // covers soak times, retry backoffs, maintenance windows and timeouts.
    engine::orchestration::spawn_orchestrator(
        engine.clone(),
        std::time::Duration::from_millis(h.tick_ms),
    );
    Ok(())
}

/// A database URL without its password, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://murmur.db"), "sqlite://murmur.db");
    }

    #[test]
    fn flags_beat_file_beat_defaults() {
        let file: FileConfig = toml::from_str(
            "listen = \"0.0.0.0:8080\"\ndatabase_url = \"sqlite://file.db\"\nlog_format = \"json\"",
        )
        .unwrap();
        let cli =
            Cli::try_parse_from(["murmur", "serve", "--database-url", "sqlite://flag.db"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        let c = resolve(file, Some(&args), &args.store, Config::DEFAULT_DATABASE_URL).unwrap();
        assert_eq!(c.database_url, "sqlite://flag.db");
        assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.site_root, PathBuf::from("target/site"));
    }

    #[test]
    fn unknown_file_keys_and_bad_sizes_are_refused() {
        assert!(toml::from_str::<FileConfig>("lisen = \"x\"").is_err());
        assert!(Cli::try_parse_from(["murmur", "demo", "--subclouds", "0"]).is_err());
        assert!(Cli::try_parse_from(["murmur", "demo", "--subclouds", "20001"]).is_err());
        assert!(Cli::try_parse_from(["murmur", "demo", "--subclouds", "20000"]).is_ok());
        assert!(Cli::try_parse_from(["murmur", "serve", "--listen", "nowhere"]).is_err());
    }
}
