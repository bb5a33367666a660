//! `auth::UserName::parse`: login names from the sign-in form and the users page.
//!
//! Invariant: it accepts exactly 1–64 ASCII letters, digits, `.`, `_` and `-` starting with
//! a letter or digit, unchanged; errors name the `username` field.
#![no_main]

use engine::auth::UserName;
use libfuzzer_sys::fuzz_target;

fn documented(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= 64
        && raw.starts_with(|c: char| c.is_ascii_alphanumeric())
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fuzz_target!(|raw: &str| {
    match UserName::parse(raw) {
        Ok(name) => {
            assert!(documented(raw), "accepted {raw:?}");
            assert_eq!(name.as_str(), raw);
        }
        Err(e) => {
            assert!(!documented(raw), "rejected {raw:?}: {e}");
            assert_eq!(e.field, "username");
        }
    }
});
