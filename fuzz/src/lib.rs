//! Helpers shared by the fuzz targets: turning fuzz bytes into URL query pairs the way a
//! browser's query string reaches the server (already percent-decoded), and a tiny
//! percent-decoder to read back what the engine's `to_query_string` writes.

use libfuzzer_sys::arbitrary::{Result, Unstructured};

/// At most this many (key, value) pairs per input; more adds nothing but time.
pub const MAX_PAIRS: usize = 24;

/// Whitespace that `str::trim` removes (ASCII and Unicode), to pad known values with.
const PADDING: &[&str] = &[" ", "\t", "\n", "\r\n", "\u{a0}", "\u{3000}", "\u{2028}"];

/// Arbitrary text taken from the input (valid UTF-8: what a decoded query value is).
pub fn text<'a>(u: &mut Unstructured<'a>) -> Result<&'a str> {
    u.arbitrary::<&str>()
}

/// One of `choices`, sometimes padded with whitespace on either side.
pub fn pick(u: &mut Unstructured<'_>, choices: &[&str]) -> Result<String> {
    let mut s = String::new();
    if u.ratio(1, 8)? {
        s.push_str(u.choose(PADDING)?);
    }
    s.push_str(u.choose(choices)?);
    if u.ratio(1, 8)? {
        s.push_str(u.choose(PADDING)?);
    }
    Ok(s)
}

/// A number as text: mostly near the ranges the engine accepts, sometimes anything, sometimes
/// with a sign or leading zeros (which `u32::from_str` accepts).
pub fn number(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0u8..=5)? {
        0 => u.int_in_range(0u32..=600)?.to_string(),
        1 => u.int_in_range(999_990u32..=1_000_010)?.to_string(),
        2 => u.arbitrary::<u32>()?.to_string(),
        3 => u.arbitrary::<i64>()?.to_string(),
        4 => format!("+{}", u.int_in_range(0u32..=600)?),
        _ => format!("00{}", u.int_in_range(0u32..=600)?),
    })
}

/// (key, value) pairs: keys mostly from `keys` (sometimes arbitrary, e.g. `utm_source`), values
/// from `value`, which gets the key to choose a fitting kind of value.
pub fn pairs(
    u: &mut Unstructured<'_>,
    keys: &[&str],
    mut value: impl FnMut(&mut Unstructured<'_>, &str) -> Result<String>,
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    while !u.is_empty() && out.len() < MAX_PAIRS {
        let key = if u.ratio(7, 8)? {
            (*u.choose(keys)?).to_string()
        } else {
            text(u)?.to_string()
        };
        let v = value(u, &key)?;
        out.push((key, v));
    }
    Ok(out)
}

/// Decodes `%XX` escapes (exactly two hex digits) and checks that every other byte is in the
/// RFC 3986 unreserved set or `/`, which is all the engine's encoder
/// (`engine::url::encode_query_value`) writes. `None` if the text is not such an encoding or
/// does not decode to UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            c if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~' | b'/') => {
                out.push(c);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// Splits `?k=v&k=v` (or the empty string) into decoded pairs, panicking with the offending
/// text if it is not a well-formed encoding.
pub fn split_query(qs: &str) -> Vec<(String, String)> {
    if qs.is_empty() {
        return Vec::new();
    }
    let rest = qs
        .strip_prefix('?')
        .unwrap_or_else(|| panic!("query string without '?': {qs:?}"));
    assert!(!rest.is_empty(), "query string is a bare '?'");
    rest.split('&')
        .map(|part| {
            let (k, v) = part
                .split_once('=')
                .unwrap_or_else(|| panic!("parameter without '=' in {qs:?}"));
            let k = percent_decode(k).unwrap_or_else(|| panic!("bad key encoding in {qs:?}"));
            let v = percent_decode(v).unwrap_or_else(|| panic!("bad value encoding in {qs:?}"));
            (k, v)
        })
        .collect()
}

/// Borrows owned pairs the way `from_params` takes them.
pub fn as_strs(pairs: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

/// The rest of the input as text: its longest valid UTF-8 prefix.
pub fn rest_text<'a>(u: &mut Unstructured<'a>) -> &'a str {
    let bytes = u.bytes(u.len()).unwrap_or_default();
    match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
    }
}
