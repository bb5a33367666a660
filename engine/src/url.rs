//! Percent-encoding of URL query values, shared by everything that writes links (list and
//! audit filters, login redirects).

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

#[cfg(test)]
mod tests {
    use super::encode_query_value;

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
