//! Faults an operator injects into simulated sites, and which sites they hit.
//!
//! JSON shapes (control API and CLI): a fault is `{"kind": "down"}`, `{"kind": "flap",
//! "period_ms": 5000}`, `{"kind": "latency", "ms": 200}`, `{"kind": "loss", "percent": 30}`,
//! `{"kind": "partition", "controller": "sc-amsterdam"}`, … ; a selector is
//! `{"sites": ["a", "b"]}`, `{"region": "Europe"}` or `{"all": true}`. A selector that names
//! nothing (`{}`, `{"all": false}`, an unknown region) selects no site, never all of them.

use serde::{Deserialize, Serialize};

use engine::agents::wire::ControllerRef;

/// Bounds on fault parameters (the library clamps; the control API refuses outside them).
pub const FLAP_PERIOD_MS: (u64, u64) = (100, 86_400_000);
pub const MAX_LATENCY_MS: u32 = 60_000;

/// A fault to inject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// The site stops reporting entirely.
    Down,
    /// Clears `down` and `flap`.
    Up,
    /// Alternates down and up every `period_ms`, starting down.
    Flap { period_ms: u64 },
    /// Waits `ms` before each send and adds it to the reported round-trip times (0 clears).
    Latency { ms: u32 },
    /// Drops that share of reports (0 clears).
    Loss { percent: u8 },
    /// Requests to that controller (name or URL) fail as if it were unreachable.
    Partition { controller: String },
    /// Clears every fault of the site.
    Heal,
    /// The next command the site takes on fails part-way.
    FailNextCommand,
    /// The agent restarts: command state lost, silent for one interval, seq from the clock.
    Restart,
}

impl Fault {
    /// Checks the parameters; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Fault::Flap { period_ms }
                if !(FLAP_PERIOD_MS.0..=FLAP_PERIOD_MS.1).contains(period_ms) =>
            {
                Err(format!(
                    "period_ms must be between {} and {}",
                    FLAP_PERIOD_MS.0, FLAP_PERIOD_MS.1
                ))
            }
            Fault::Latency { ms } if *ms > MAX_LATENCY_MS => {
                Err(format!("ms must be at most {MAX_LATENCY_MS}"))
            }
            Fault::Loss { percent } if *percent > 100 => {
                Err("percent must be between 0 and 100".into())
            }
            Fault::Partition { controller } if controller.trim().is_empty() => {
                Err("controller must name a controller".into())
            }
            _ => Ok(()),
        }
    }

    /// The same fault with parameters forced into their bounds.
    pub fn clamped(self) -> Self {
        match self {
            Fault::Flap { period_ms } => Fault::Flap {
                period_ms: period_ms.clamp(FLAP_PERIOD_MS.0, FLAP_PERIOD_MS.1),
            },
            Fault::Latency { ms } => Fault::Latency {
                ms: ms.min(MAX_LATENCY_MS),
            },
            Fault::Loss { percent } => Fault::Loss {
                percent: percent.min(100),
            },
            other => other,
        }
    }
}

/// Which sites a fault or a query applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SelectorWire", into = "SelectorWire")]
pub enum Selector {
    /// These sites (unknown names are skipped).
    Sites(Vec<String>),
    /// Every site of this region (case-insensitive).
    Region(String),
    All,
    /// No site (an empty selector).
    Nothing,
}

impl Selector {
    /// Whether a site with this name and region is selected.
    pub fn matches(&self, name: &str, region: &str) -> bool {
        match self {
            Selector::Sites(names) => names.iter().any(|n| n == name),
            Selector::Region(r) => r.eq_ignore_ascii_case(region),
            Selector::All => true,
            Selector::Nothing => false,
        }
    }
}

/// The JSON object form: exactly one of the keys, or none (selects nothing).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SelectorWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sites: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    all: Option<bool>,
}

impl TryFrom<SelectorWire> for Selector {
    type Error = String;

    fn try_from(w: SelectorWire) -> Result<Self, String> {
        match (w.sites, w.region, w.all) {
            (Some(sites), None, None) => Ok(Selector::Sites(sites)),
            (None, Some(region), None) => Ok(Selector::Region(region)),
            (None, None, Some(true)) => Ok(Selector::All),
            (None, None, Some(false)) | (None, None, None) => Ok(Selector::Nothing),
            _ => Err("a selector has exactly one of: sites, region, all".into()),
        }
    }
}

impl From<Selector> for SelectorWire {
    fn from(s: Selector) -> Self {
        match s {
            Selector::Sites(sites) => Self {
                sites: Some(sites),
                ..Self::default()
            },
            Selector::Region(region) => Self {
                region: Some(region),
                ..Self::default()
            },
            Selector::All => Self {
                all: Some(true),
                ..Self::default()
            },
            Selector::Nothing => Self::default(),
        }
    }
}

/// A flap started at `since_ms` (simulator clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flap {
    pub period_ms: u64,
    pub since_ms: u64,
}

/// The faults one site is under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultState {
    pub down: bool,
    pub flap: Option<Flap>,
    pub latency_ms: u32,
    pub loss_percent: u8,
    /// Controllers (names or URLs) the site cannot reach.
    pub partitions: Vec<String>,
    pub fail_next_command: bool,
}

impl FaultState {
    /// Records `fault` at `now_ms`. `Restart` is not a lasting fault: the site handles it.
    pub fn apply(&mut self, fault: &Fault, now_ms: u64) {
        match fault.clone().clamped() {
            Fault::Down => {
                self.down = true;
                self.flap = None;
            }
            Fault::Up => {
                self.down = false;
                self.flap = None;
            }
            Fault::Flap { period_ms } => {
                self.down = false;
                self.flap = Some(Flap {
                    period_ms,
                    since_ms: now_ms,
                });
            }
            Fault::Latency { ms } => self.latency_ms = ms,
            Fault::Loss { percent } => self.loss_percent = percent,
            Fault::Partition { controller } => {
                if !self.partitions.contains(&controller) {
                    self.partitions.push(controller);
                }
            }
            Fault::Heal => *self = Self::default(),
            Fault::FailNextCommand => self.fail_next_command = true,
            Fault::Restart => {}
        }
    }

    /// Whether the site is silent at `now_ms`: down, or in the down half of a flap.
    pub fn is_down(&self, now_ms: u64) -> bool {
        self.down
            || self.flap.is_some_and(|f| {
                let period = f.period_ms.max(1);
                (now_ms.saturating_sub(f.since_ms) / period) % 2 == 0
            })
    }

    /// Whether requests to `controller` fail.
    pub fn is_partitioned(&self, controller: &ControllerRef) -> bool {
        self.partitions
            .iter()
            .any(|p| *p == controller.name || *p == controller.url)
    }

    /// Whether any fault is set.
    pub fn is_clear(&self) -> bool {
        *self == Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(json: &str) -> Result<Selector, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn selectors_never_widen_to_all() {
        assert_eq!(selector("{}").unwrap(), Selector::Nothing);
        assert_eq!(selector(r#"{"all":false}"#).unwrap(), Selector::Nothing);
        assert_eq!(selector(r#"{"all":true}"#).unwrap(), Selector::All);
        let europe = selector(r#"{"region":"europe"}"#).unwrap();
        assert!(europe.matches("x", "Europe"));
        assert!(!Selector::Region("Atlantis".into()).matches("x", "Europe"));
        assert!(!Selector::Nothing.matches("x", "Europe"));
        assert!(!Selector::Sites(vec![]).matches("x", "Europe"));
        // A typo or an ambiguous selector is an error, not a wider selection.
        assert!(selector(r#"{"regoin":"Europe"}"#).is_err());
        assert!(selector(r#"{"region":"Europe","all":true}"#).is_err());
        assert!(selector(r#"{"sites":"a"}"#).is_err());
    }

    #[test]
    fn selectors_round_trip() {
        for s in [
            Selector::Sites(vec!["a".into()]),
            Selector::Region("Asia".into()),
            Selector::All,
            Selector::Nothing,
        ] {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(selector(&json).unwrap(), s, "{json}");
        }
    }

    #[test]
    fn faults_parse_from_their_documented_json() {
        let f: Fault = serde_json::from_str(r#"{"kind":"flap","period_ms":500}"#).unwrap();
        assert_eq!(f, Fault::Flap { period_ms: 500 });
        let f: Fault = serde_json::from_str(r#"{"kind":"fail_next_command"}"#).unwrap();
        assert_eq!(f, Fault::FailNextCommand);
        assert!(serde_json::from_str::<Fault>(r#"{"kind":"explode"}"#).is_err());
        assert!(serde_json::from_str::<Fault>(r#"{"kind":"latency"}"#).is_err());
        assert!(Fault::Loss { percent: 101 }.validate().is_err());
        assert!(Fault::Flap { period_ms: 1 }.validate().is_err());
        assert!(Fault::Partition {
            controller: " ".into()
        }
        .validate()
        .is_err());
        assert!(Fault::Latency { ms: 10 }.validate().is_ok());
    }

    #[test]
    fn flap_toggles_with_time_and_up_or_heal_stop_it() {
        let mut f = FaultState::default();
        f.apply(&Fault::Flap { period_ms: 1_000 }, 10_000);
        assert!(f.is_down(10_000) && f.is_down(10_999));
        assert!(!f.is_down(11_000) && !f.is_down(11_999));
        assert!(f.is_down(12_000));
        f.apply(&Fault::Up, 12_500);
        assert!(!f.is_down(12_500) && !f.is_down(14_000));
        f.apply(&Fault::Flap { period_ms: 1_000 }, 20_000);
        f.apply(&Fault::Heal, 20_100);
        assert!(!f.is_down(20_200) && f.is_clear());
    }

    #[test]
    fn heal_clears_every_fault_and_up_only_down() {
        let mut f = FaultState::default();
        for fault in [
            Fault::Down,
            Fault::Latency { ms: 300 },
            Fault::Loss { percent: 200 },
            Fault::Partition {
                controller: "sc-a".into(),
            },
            Fault::Partition {
                controller: "sc-a".into(),
            },
            Fault::FailNextCommand,
        ] {
            f.apply(&fault, 0);
        }
        assert!(f.is_down(0));
        assert_eq!(
            (f.loss_percent, f.partitions.len()),
            (100, 1),
            "clamped, no duplicate"
        );
        let sc_a = ControllerRef {
            name: "sc-a".into(),
            url: "http://a".into(),
        };
        assert!(f.is_partitioned(&sc_a));
        f.apply(&Fault::Up, 0);
        assert!(!f.is_down(0) && f.latency_ms == 300 && f.fail_next_command);
        f.apply(&Fault::Heal, 0);
        assert!(f.is_clear() && !f.is_partitioned(&sc_a));
    }
}
