//! Page arithmetic shared by every paged list (subclouds, alarms, audit log).

/// Pages needed for `matching` rows at `per_page` a page; at least 1, so an empty list still
/// has a page to show.
pub fn page_count(matching: u64, per_page: u32) -> u32 {
    let pages = matching.div_ceil(u64::from(per_page.max(1))).max(1);
    u32::try_from(pages).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::page_count;

    #[test]
    fn counts_whole_pages() {
        assert_eq!(page_count(0, 50), 1);
        assert_eq!(page_count(50, 50), 1);
        assert_eq!(page_count(51, 50), 2);
        assert_eq!(page_count(10, 0), 10);
        assert_eq!(page_count(u64::MAX, 1), u32::MAX);
    }
}
