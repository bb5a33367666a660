//! Percent-encoding of URL query values, shared by everything that writes links (list and
//! audit filters, login redirects), and the strict decoding of query strings that come back
//! (form round trips, rollout filters).

/// Percent-encodes `value` for a URL query: RFC 3986 unreserved characters and `/` (allowed
/// in a query, and it keeps encoded paths readable) stay as they are.
pub fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space); `None` for a
/// malformed escape (not two hex digits) or bytes that are not UTF-8.
pub fn decode_component(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Splits `?k=v&k=v` (the `?` optional, empty parts skipped) into decoded pairs; `None` if
/// any component is malformed.
pub fn parse_query(qs: &str) -> Option<Vec<(String, String)>> {
    qs.trim_start_matches('?')
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((decode_component(k)?, decode_component(v)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_strictly() {
        assert_eq!(
            parse_query("?a=S%C3%A3o+Paulo&&b"),
            Some(vec![
                ("a".into(), "São Paulo".into()),
                ("b".into(), String::new())
            ])
        );
        for bad in ["a=%ZZ", "a=%+f", "a=%C3", "a=%4"] {
            assert_eq!(parse_query(bad), None, "{bad}");
        }
    }

    #[test]
    fn encodes_reserved_and_non_ascii() {
        assert_eq!(
            encode_query_value("São Paulo&x=1"),
            "S%C3%A3o%20Paulo%26x%3D1"
        );
        assert_eq!(encode_query_value("/subclouds?a=b"), "/subclouds%3Fa%3Db");
        assert_eq!(encode_query_value("a-z_0.9~"), "a-z_0.9~");
    }
}
