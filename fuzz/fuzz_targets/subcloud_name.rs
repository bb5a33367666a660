//! `SubcloudName::parse`: subcloud names from forms, URLs and the API.
//!
//! Invariant: it accepts exactly the documented names (1–64 ASCII letters, digits, `-` and
//! `_`, starting with a letter, not a reserved name in any case), unchanged; errors name the
//! `name` field.
#![no_main]

use engine::fleet::SubcloudName;
use libfuzzer_sys::fuzz_target;

fn documented(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= SubcloudName::MAX_LEN
        && raw.starts_with(|c: char| c.is_ascii_alphabetic())
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !["systemcontroller", "regionone"].contains(&raw.to_ascii_lowercase().as_str())
}

fuzz_target!(|raw: &str| {
    match SubcloudName::parse(raw) {
        Ok(name) => {
            assert!(documented(raw), "accepted {raw:?}");
            assert_eq!(name.as_str(), raw);
            assert_eq!(name.to_string(), raw);
        }
        Err(e) => {
            assert!(!documented(raw), "rejected {raw:?}: {e}");
            assert_eq!(e.field, "name");
        }
    }
});
