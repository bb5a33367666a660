//! What a real agent keeps between runs, in `DIR/state.json` (mode 0600: it holds the
//! secret). Written to a temporary file and renamed, so a crash never leaves half a file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use engine::agents::wire::ControllerRef;
use serde::{Deserialize, Serialize};

const FILE: &str = "state.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentState {
    pub subcloud: String,
    /// `mms_…`: the bearer credential of every report.
    pub secret: String,
    /// The highest seq used: the next one is above it even if the clock went back.
    pub last_seq: u64,
    /// Highest owner epoch seen: fencing holds across restarts.
    #[serde(default)]
    pub highest_epoch: u64,
    /// The latest controller list (owner first).
    #[serde(default)]
    pub controllers: Vec<ControllerRef>,
    #[serde(default)]
    pub report_interval_ms: u64,
    /// FNV-1a of the enrollment token this secret came from: a different token given on the
    /// command line means the operator re-issued it, so the agent enrolls again. (The token
    /// is single-use and already spent; its hash reveals nothing usable.)
    #[serde(default)]
    pub token_fingerprint: String,
}

impl AgentState {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(FILE)
    }

    /// The saved state, or `None` when there is none yet.
    pub fn load(dir: &Path) -> anyhow::Result<Option<Self>> {
        let path = Self::path(dir);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let state = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid agent state file", path.display()))?;
        Ok(Some(state))
    }

    /// Saves atomically with owner-only permissions.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = Self::path(dir);
        let tmp = dir.join(format!("{FILE}.tmp"));
        let json = serde_json::to_vec_pretty(self).context("cannot encode the agent state")?;
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        // The mode above only applies to a new file; a leftover one keeps its own.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot restrict {}", tmp.display()))?;
        }
        file.write_all(&json)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("cannot replace {}", path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("nested");
        assert_eq!(AgentState::load(&sub).unwrap(), None);
        let state = AgentState {
            subcloud: "oslo-1".into(),
            secret: "mms_1_x".into(),
            last_seq: 42,
            highest_epoch: 3,
            controllers: vec![ControllerRef {
                name: "a".into(),
                url: "http://a".into(),
            }],
            report_interval_ms: 10_000,
            token_fingerprint: "abc".into(),
        };
        state.save(&sub).unwrap();
        state.save(&sub).unwrap();
        assert_eq!(AgentState::load(&sub).unwrap(), Some(state));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(AgentState::path(&sub))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::write(AgentState::path(&sub), "{broken").unwrap();
        assert!(AgentState::load(&sub).is_err());
    }
}
