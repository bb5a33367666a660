//! Command-line interface: argument definitions and what each subcommand does.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use agent::admin::{name_for_url, AdminClient};
use agent::sim::{
    ActionKind, Fault, Selector, SimConfig, Simulator, SiteSpec, StepConfig, StepPatch,
};
use agent::site_agent::{self, AgentConfig};
use anyhow::{anyhow, bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use engine::agents::wire::ControllerRef;
use engine::agents::EnrollmentRequest;

const DEFAULT_CONTROL: &str = "127.0.0.1:7700";
/// How often `simulate` logs a one-line summary.
const SUMMARY_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Parser)]
#[command(
    name = "murmur-agent",
    version,
    about = "Murmuration subcloud agent and fleet simulator"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agent of one real subcloud.
    Run(RunArgs),
    /// Simulate many subclouds against real controllers (until Ctrl-C or SIGTERM).
    Simulate(SimulateArgs),
    /// Inject a fault into sites of a running simulator.
    Fault(FaultArgs),
    /// Print a running simulator's statistics (JSON).
    Stats(ControlArgs),
    /// Print sites of a running simulator (JSON).
    Sites(SitesArgs),
    /// Show (no options) or change how a running simulator executes commands (JSON).
    Steps(StepsArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Controller base URL, in order of preference (repeatable).
    #[arg(long = "controller", value_name = "URL", required = true)]
    controllers: Vec<String>,
    /// This subcloud's name, as the controller knows it.
    #[arg(long)]
    subcloud: String,
    /// One-time enrollment token (mme_…); needed on the first start only.
    #[arg(long, env = "MURMUR_ENROLLMENT_TOKEN", hide_env_values = true)]
    enrollment_token: Option<String>,
    /// Where the secret and the last seq are kept (state.json, mode 0600).
    #[arg(long, value_name = "DIR")]
    state_dir: PathBuf,
    /// Report interval, overriding the controller's.
    #[arg(long, value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    interval_ms: Option<u64>,
    /// Software release running on this site.
    #[arg(long, default_value = "unknown")]
    software_version: String,
}

#[derive(Debug, Args)]
struct SimulateArgs {
    /// Controller base URL (repeatable); the first that answers issues the tokens.
    #[arg(long = "controller", value_name = "URL", required = true)]
    controllers: Vec<String>,
    /// Admin API token (mmt_…).
    #[arg(long, env = "MURMUR_API_TOKEN", hide_env_values = true)]
    api_token: String,
    /// Subclouds to simulate (comma-separated); default: all.
    #[arg(long, value_delimiter = ',', conflicts_with = "all")]
    subclouds: Vec<String>,
    /// Simulate every subcloud (the default).
    #[arg(long)]
    all: bool,
    /// Simulate at most this many of them.
    #[arg(long)]
    limit: Option<usize>,
    /// Same seed, same simulated fleet.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Address of the control API (keep it on loopback: it has no authentication).
    #[arg(long, default_value = DEFAULT_CONTROL)]
    control: SocketAddr,
    /// Concurrent report requests at most.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    max_in_flight: u64,
    /// Concurrent enrollment requests at most.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=4_096))]
    enroll_concurrency: u64,
    #[command(flatten)]
    steps: StepArgs,
}

/// How simulated sites execute commands.
#[derive(Debug, Args)]
struct StepArgs {
    /// Scale of every command's duration: 1 = the defaults (software deploy ~3 min), 0 =
    /// instant (done at the first report after receipt).
    #[arg(long, value_name = "FACTOR", value_parser = parse_scale)]
    step_seconds: Option<f64>,
    /// Probability (0–1) that a command fails in one of its phases [default: 0.02].
    #[arg(long, value_name = "P", value_parser = parse_rate)]
    step_failure_rate: Option<f64>,
    /// Mean duration of one action kind before scaling, e.g. prestage=600 (repeatable).
    #[arg(long, value_name = "KIND=SECONDS", value_parser = parse_mean)]
    step_mean: Vec<(ActionKind, f64)>,
}

impl StepArgs {
    fn patch(&self) -> StepPatch {
        StepPatch {
            scale: self.step_seconds,
            failure_rate: self.step_failure_rate,
            mean_seconds: self.step_mean.iter().copied().collect(),
        }
    }
}

fn parse_scale(v: &str) -> Result<f64, String> {
    let x: f64 = v.parse().map_err(|_| format!("{v:?} is not a number"))?;
    if x.is_finite() && (0.0..=agent::sim::MAX_SCALE).contains(&x) {
        Ok(x)
    } else {
        Err(format!("must be between 0 and {}", agent::sim::MAX_SCALE))
    }
}

fn parse_rate(v: &str) -> Result<f64, String> {
    let x: f64 = v.parse().map_err(|_| format!("{v:?} is not a number"))?;
    if x.is_finite() && (0.0..=1.0).contains(&x) {
        Ok(x)
    } else {
        Err("must be between 0 and 1".into())
    }
}

fn parse_mean(v: &str) -> Result<(ActionKind, f64), String> {
    let (kind, secs) = v
        .split_once('=')
        .ok_or_else(|| format!("expected KIND=SECONDS, got {v:?}"))?;
    let kind = ActionKind::ALL
        .into_iter()
        .find(|k| k.name() == kind.trim())
        .ok_or_else(|| {
            let names: Vec<&str> = ActionKind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown action kind {kind:?}; one of {}", names.join(", "))
        })?;
    let secs: f64 = secs
        .trim()
        .parse()
        .map_err(|_| format!("{secs:?} is not a number of seconds"))?;
    if secs.is_finite() && (0.0..=agent::sim::MAX_MEAN_SECONDS).contains(&secs) {
        Ok((kind, secs))
    } else {
        Err(format!(
            "seconds must be between 0 and {}",
            agent::sim::MAX_MEAN_SECONDS
        ))
    }
}

#[derive(Debug, Args)]
struct StepsArgs {
    #[command(flatten)]
    control: ControlArgs,
    #[command(flatten)]
    steps: StepArgs,
}

#[derive(Debug, Args)]
struct ControlArgs {
    /// The simulator's control API (address or URL).
    #[arg(long, env = "MURMUR_SIM_CONTROL", default_value = DEFAULT_CONTROL)]
    control: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FaultKind {
    Down,
    Up,
    Flap,
    Latency,
    Loss,
    Partition,
    Heal,
    FailNextCommand,
    Restart,
}

#[derive(Debug, Args)]
struct FaultArgs {
    #[command(flatten)]
    control: ControlArgs,
    /// The fault to inject.
    kind: FaultKind,
    /// flap: half-period (down this long, then up this long).
    #[arg(long)]
    period_ms: Option<u64>,
    /// latency: added before each report.
    #[arg(long)]
    ms: Option<u32>,
    /// loss: share of reports dropped.
    #[arg(long)]
    percent: Option<u8>,
    /// partition: the controller (name or URL) the sites cannot reach.
    #[arg(long)]
    controller: Option<String>,
    #[command(flatten)]
    selector: SelectorArgs,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct SelectorArgs {
    /// Site name (repeatable or comma-separated).
    #[arg(long = "site", value_delimiter = ',')]
    sites: Vec<String>,
    /// Every site of this region.
    #[arg(long)]
    region: Option<String>,
    /// Every site.
    #[arg(long)]
    all: bool,
}

#[derive(Debug, Args)]
struct SitesArgs {
    #[command(flatten)]
    control: ControlArgs,
    /// Site names (comma-separated).
    #[arg(long = "site", value_delimiter = ',', conflicts_with = "region")]
    sites: Vec<String>,
    #[arg(long)]
    region: Option<String>,
    #[arg(long, default_value_t = 1_000)]
    limit: usize,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(a) => run_agent(a).await,
        Command::Simulate(a) => simulate(a).await,
        Command::Fault(a) => fault(a).await,
        Command::Stats(a) => print(control_get(&a.control, "/stats").await?),
        Command::Sites(a) => {
            let mut query = format!("/sites?limit={}", a.limit);
            if !a.sites.is_empty() {
                query.push_str(&format!("&site={}", encode(&a.sites.join(","))));
            } else if let Some(r) = &a.region {
                query.push_str(&format!("&region={}", encode(r)));
            }
            print(control_get(&a.control.control, &query).await?)
        }
        Command::Steps(a) => {
            let patch = a.steps.patch();
            if patch == StepPatch::default() {
                print(control_get(&a.control.control, "/steps").await?)
            } else {
                let body = serde_json::to_value(&patch)?;
                print(control_call(&a.control.control, "/steps", Some(body)).await?)
            }
        }
    }
}

async fn run_agent(a: RunArgs) -> anyhow::Result<()> {
    let config = AgentConfig {
        controllers: a.controllers,
        subcloud: a.subcloud,
        enrollment_token: a.enrollment_token,
        state_dir: a.state_dir,
        interval_ms: a.interval_ms,
        software_version: a.software_version,
    };
    site_agent::run(config, shutdown_signal()).await
}

async fn simulate(a: SimulateArgs) -> anyhow::Result<()> {
    // The first controller that answers issues the tokens; it is tried first for enrolling,
    // after the site's own controller when the enrollment names one that is listed here.
    let mut failures = Vec::new();
    let mut found = None;
    for url in &a.controllers {
        let admin = AdminClient::new(url, &a.api_token)?;
        match admin.controllers().await {
            Ok(known) => {
                found = Some((url.clone(), admin, known));
                break;
            }
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    let Some((admin_url, admin, known)) = found else {
        bail!("no controller answered: {}", failures.join("; "));
    };
    let which = EnrollmentRequest {
        all: a.subclouds.is_empty(),
        subclouds: a.subclouds,
    };
    let mut enrollments = admin
        .enrollments(&which)
        .await
        .context("cannot issue enrollment tokens")?;
    if enrollments.is_empty() {
        bail!("the controller issued no enrollment tokens (no such subclouds?)");
    }
    if let Some(limit) = a.limit {
        if limit < enrollments.len() {
            tracing::warn!(
                issued = enrollments.len(),
                simulated = limit,
                "simulating only the first subclouds; the other tokens stay unused"
            );
            enrollments.truncate(limit);
        }
    }
    let mut urls = vec![admin_url.clone()];
    urls.extend(a.controllers.iter().filter(|u| **u != admin_url).cloned());
    let controllers = urls
        .iter()
        .map(|url| ControllerRef {
            name: name_for_url(url, &known),
            url: url.trim_end_matches('/').to_string(),
        })
        .collect();
    let steps = StepConfig::default()
        .patched(&a.steps.patch())
        .map_err(|e| anyhow!("{e}"))?;
    let config = SimConfig {
        steps,
        controllers,
        controller_coords: known
            .iter()
            .map(|c| (c.name.clone(), c.lat, c.lon))
            .collect(),
        seed: a.seed,
        control_listen: Some(a.control),
        max_in_flight: usize::try_from(a.max_in_flight).unwrap_or(256),
        enroll_concurrency: usize::try_from(a.enroll_concurrency).unwrap_or(32),
    };
    let sites: Vec<SiteSpec> = enrollments.into_iter().map(SiteSpec::from).collect();
    let sim = Simulator::start(config, sites).await?;
    if let Some(addr) = sim.control_addr() {
        tracing::info!("control API on http://{addr} (murmur-agent stats --control {addr})");
    }
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let mut every = tokio::time::interval(SUMMARY_EVERY);
    every.tick().await;
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = every.tick() => {
                let s = sim.stats();
                tracing::info!(
                    enrolled = s.enrolled,
                    enrolling = s.enrolling,
                    accepted = s.reports_accepted,
                    reports_per_s = s.reports_per_s,
                    p99_ms = s.recent_report_rtt_ms.p99,
                    lag_p99_ms = s.recent_schedule_lag_ms.p99,
                    in_flight = s.in_flight,
                    transport_errors = s.transport_errors,
                    down = s.sites_down,
                    "simulator"
                );
            }
        }
    }
    sim.shutdown().await;
    Ok(())
}

async fn fault(a: FaultArgs) -> anyhow::Result<()> {
    let missing = |flag: &str| anyhow!("{:?} needs --{flag}", a.kind);
    let fault = match a.kind {
        FaultKind::Down => Fault::Down,
        FaultKind::Up => Fault::Up,
        FaultKind::Flap => Fault::Flap {
            period_ms: a.period_ms.ok_or_else(|| missing("period-ms"))?,
        },
        FaultKind::Latency => Fault::Latency {
            ms: a.ms.ok_or_else(|| missing("ms"))?,
        },
        FaultKind::Loss => Fault::Loss {
            percent: a.percent.ok_or_else(|| missing("percent"))?,
        },
        FaultKind::Partition => Fault::Partition {
            controller: a.controller.clone().ok_or_else(|| missing("controller"))?,
        },
        FaultKind::Heal => Fault::Heal,
        FaultKind::FailNextCommand => Fault::FailNextCommand,
        FaultKind::Restart => Fault::Restart,
    };
    fault.validate().map_err(|m| anyhow!("{m}"))?;
    let selector = if a.selector.all {
        Selector::All
    } else if let Some(r) = a.selector.region {
        Selector::Region(r)
    } else {
        Selector::Sites(a.selector.sites)
    };
    let body = serde_json::json!({ "fault": fault, "selector": selector });
    let answer = control_call(&a.control.control, "/faults", Some(body)).await?;
    if answer["affected"].as_u64() == Some(0) {
        eprintln!("murmur-agent: warning: no site matched the selector");
    }
    print(answer)
}

fn print(value: serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(())
}

async fn control_get(control: &str, path: &str) -> anyhow::Result<serde_json::Value> {
    control_call(control, path, None).await
}

/// GET (or POST `body`) on the control API; a JSON error answer becomes the error.
async fn control_call(
    control: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    let base = if control.contains("://") {
        control.trim_end_matches('/').to_string()
    } else {
        format!("http://{control}")
    };
    let url = format!("{base}{path}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")?;
    let request = match body {
        Some(b) => client.post(&url).json(&b),
        None => client.get(&url),
    };
    let response = request.send().await.map_err(|e| {
        anyhow!("cannot reach the simulator control API at {base} ({e}); is `murmur-agent simulate` running?")
    })?;
    let status = response.status();
    let text = response.text().await.context("cannot read the answer")?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|_| anyhow!("{url}: HTTP {status}: {}", text.trim()))?;
    if !status.is_success() {
        let message = value["error"]["message"].as_str().unwrap_or("no message");
        bail!("{url}: HTTP {status}: {message}");
    }
    Ok(value)
}

/// Percent-encodes a query value.
fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b',' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
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
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn fault_commands_parse_as_documented() {
        let cli = Cli::try_parse_from([
            "murmur-agent",
            "fault",
            "--control",
            "127.0.0.1:7700",
            "flap",
            "--period-ms",
            "2000",
            "--region",
            "Europe",
        ])
        .unwrap();
        let Command::Fault(f) = cli.command else {
            panic!("not a fault")
        };
        assert_eq!(
            (f.kind, f.period_ms, f.selector.region.as_deref()),
            (FaultKind::Flap, Some(2000), Some("Europe"))
        );
        let cli = Cli::try_parse_from([
            "murmur-agent",
            "fault",
            "down",
            "--site",
            "a",
            "--site",
            "b,c",
        ])
        .unwrap();
        let Command::Fault(f) = cli.command else {
            panic!("not a fault")
        };
        assert_eq!(f.selector.sites, vec!["a", "b", "c"]);
        assert!(
            Cli::try_parse_from(["murmur-agent", "fault", "down"]).is_err(),
            "a selector is required"
        );
        assert!(
            Cli::try_parse_from(["murmur-agent", "fault", "down", "--all", "--region", "x"])
                .is_err()
        );
        assert!(
            Cli::try_parse_from(["murmur-agent", "fault", "fail-next-command", "--all"]).is_ok()
        );
    }

    #[test]
    fn step_options_parse_as_documented() {
        let cli = Cli::try_parse_from([
            "murmur-agent",
            "simulate",
            "--controller",
            "http://x",
            "--api-token",
            "mmt_x",
            "--step-seconds",
            "0",
            "--step-failure-rate",
            "0.5",
            "--step-mean",
            "prestage=600",
            "--step-mean",
            "software_deploy=90",
        ])
        .unwrap();
        let Command::Simulate(s) = cli.command else {
            panic!("not simulate")
        };
        let steps = StepConfig::default().patched(&s.steps.patch()).unwrap();
        assert_eq!(
            (
                steps.scale,
                steps.failure_rate,
                steps.mean_seconds.prestage,
                steps.mean_seconds.software_deploy
            ),
            (0.0, 0.5, 600.0, 90.0)
        );
        for bad in [
            ["--step-seconds", "-1"],
            ["--step-failure-rate", "1.5"],
            ["--step-mean", "reboot=3"],
            ["--step-mean", "prestage"],
        ] {
            let mut args = vec!["murmur-agent", "steps"];
            args.extend(bad);
            assert!(Cli::try_parse_from(args).is_err(), "{bad:?}");
        }
        let cli = Cli::try_parse_from(["murmur-agent", "steps"]).unwrap();
        let Command::Steps(s) = cli.command else {
            panic!("not steps")
        };
        assert_eq!(s.steps.patch(), StepPatch::default(), "no option: show");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode("North America,a&b"), "North%20America,a%26b");
    }
}
