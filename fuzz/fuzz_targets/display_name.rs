//! `DisplayName::parse`: group, peer group, controller and region names.
//!
//! Invariant: it accepts exactly the inputs whose trimmed form has 1–255 characters and no
//! control or bidirectional formatting character (`engine::fleet::is_bidi_control`), keeps
//! that trimmed form, and re-parses it to itself; errors name the field it was given.
#![no_main]

use engine::fleet::{is_bidi_control, DisplayName};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

fn check(u: &mut Unstructured<'_>) -> Result<()> {
    let field: &str = u.choose(&["name", "group", "peer_group", "region", ""])?;
    let raw = engine_fuzz::rest_text(u);
    let t = raw.trim();
    let documented = !t.is_empty()
        && t.chars().count() <= 255
        && !t.chars().any(|c| c.is_control() || is_bidi_control(c));
    match DisplayName::parse(field, raw) {
        Ok(name) => {
            assert!(documented, "accepted {raw:?}");
            assert_eq!(name.as_str(), t);
            assert_eq!(DisplayName::parse(field, name.as_str()).as_ref(), Ok(&name));
        }
        Err(e) => {
            assert!(!documented, "rejected {raw:?}: {e}");
            assert_eq!(e.field, field);
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = check(&mut Unstructured::new(data));
});
