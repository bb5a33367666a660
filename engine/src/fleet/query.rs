//! The subcloud list query: filters, sort and page, parsed from URL query parameters (the
//! dashboard keeps them in the URL) with a clear error for each bad value.

use serde::{Deserialize, Serialize};

use super::model::{AvailabilityStatus, DeployStatus, ManagementState, SyncStatus};
use crate::error::ValidationError;
use crate::health::AlarmStatus;
use crate::text_enum::text_enum;

text_enum! {
    /// Columns the subcloud list can be sorted by.
    pub enum SortKey: "sort column" {
        Name = "name",
        Availability = "availability",
        Management = "management",
        Deploy = "deploy",
        Sync = "sync",
        Alarm = "alarm",
        Version = "version",
        Group = "group",
        PeerGroup = "peer_group",
        Controller = "controller",
        City = "city",
    }
}

text_enum! {
    /// A coarse class of deploy statuses, for "what needs attention" filters.
    pub enum DeployClass: "deploy class" {
        Failed = "failed",
        InProgress = "in-progress",
    }
}

impl DeployClass {
    /// Whether `status` belongs to this class.
    pub fn contains(self, status: DeployStatus) -> bool {
        match self {
            DeployClass::Failed => status.is_failure(),
            DeployClass::InProgress => status.is_in_progress(),
        }
    }
}

text_enum! {
    /// Sort direction.
    pub enum SortDir: "sort direction" {
        Asc = "asc",
        Desc = "desc",
    }
}

/// Filters, sort and page of the subcloud list. Every filter is optional; `None` means "any".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubcloudQuery {
    pub availability: Option<AvailabilityStatus>,
    pub management: Option<ManagementState>,
    pub deploy: Option<DeployStatus>,
    /// Any deploy status of this class.
    pub deploy_class: Option<DeployClass>,
    pub sync: Option<SyncStatus>,
    pub alarm: Option<AlarmStatus>,
    /// Subcloud group name (exact).
    pub group: Option<String>,
    /// Peer group name (exact).
    pub peer_group: Option<String>,
    /// Case-insensitive substring of the subcloud name or city.
    pub search: Option<String>,
    pub sort: SortKey,
    pub dir: SortDir,
    /// 1-based.
    pub page: u32,
    pub per_page: u32,
}

impl Default for SubcloudQuery {
    fn default() -> Self {
        Self {
            availability: None,
            management: None,
            deploy: None,
            deploy_class: None,
            sync: None,
            alarm: None,
            group: None,
            peer_group: None,
            search: None,
            sort: SortKey::Name,
            dir: SortDir::Asc,
            page: 1,
            per_page: Self::DEFAULT_PER_PAGE,
        }
    }
}

impl SubcloudQuery {
    pub const DEFAULT_PER_PAGE: u32 = 50;
    pub const MAX_PER_PAGE: u32 = 500;
    pub const MAX_PAGE: u32 = 1_000_000;
    pub const MAX_SEARCH_CHARS: usize = 64;

    /// Parameter names, in the order they are written back to a URL.
    pub const PARAMS: [&'static str; 13] = [
        "q",
        "availability",
        "management",
        "deploy",
        "deploy_class",
        "sync",
        "alarm",
        "group",
        "peer_group",
        "sort",
        "dir",
        "page",
        "per_page",
    ];

    /// Parses URL query parameters. Empty values mean "any"; unknown parameters are ignored
    /// (links from elsewhere may carry their own). The first bad value is reported by name.
    pub fn from_params<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ValidationError> {
        let mut q = Self::default();
        for (key, value) in params {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let field = |e: ValidationError| e.in_field(key);
            match key {
                "q" => q.search = Some(value.to_string()),
                "availability" => q.availability = Some(value.parse().map_err(field)?),
                "management" => q.management = Some(value.parse().map_err(field)?),
                "deploy" => q.deploy = Some(value.parse().map_err(field)?),
                "deploy_class" => q.deploy_class = Some(value.parse().map_err(field)?),
                "sync" => q.sync = Some(value.parse().map_err(field)?),
                "alarm" => q.alarm = Some(value.parse().map_err(field)?),
                "group" => q.group = Some(value.to_string()),
                "peer_group" => q.peer_group = Some(value.to_string()),
                "sort" => q.sort = value.parse().map_err(field)?,
                "dir" => q.dir = value.parse().map_err(field)?,
                "page" => q.page = ValidationError::whole_number(key, value)?,
                "per_page" => q.per_page = ValidationError::whole_number(key, value)?,
                _ => {}
            }
        }
        q.validate()?;
        Ok(q)
    }

    /// Checks ranges and lengths; values built in code (or deserialized from a client) pass
    /// through here before they reach the store.
    pub fn validate(&self) -> Result<(), ValidationError> {
        ValidationError::paging(self.page, self.per_page, Self::MAX_PAGE, Self::MAX_PER_PAGE)?;
        for (field, v) in [
            ("q", &self.search),
            ("group", &self.group),
            ("peer_group", &self.peer_group),
        ] {
            if let Some(v) = v {
                let limit = if field == "q" {
                    Self::MAX_SEARCH_CHARS
                } else {
                    255
                };
                if v.chars().count() > limit {
                    return Err(ValidationError::new(
                        field,
                        format!("{field} is at most {limit} characters"),
                    ));
                }
                if v.chars().any(char::is_control) {
                    return Err(ValidationError::new(
                        field,
                        format!("{field} has no control characters"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The query as URL parameters, omitting defaults, so links stay short and canonical.
    pub fn to_params(&self) -> Vec<(&'static str, String)> {
        let d = Self::default();
        let mut out = Vec::new();
        let mut push = |k: &'static str, v: Option<String>| {
            if let Some(v) = v {
                out.push((k, v));
            }
        };
        push("q", self.search.clone());
        push("availability", self.availability.map(|v| v.to_string()));
        push("management", self.management.map(|v| v.to_string()));
        push("deploy", self.deploy.map(|v| v.to_string()));
        push("deploy_class", self.deploy_class.map(|v| v.to_string()));
        push("sync", self.sync.map(|v| v.to_string()));
        push("alarm", self.alarm.map(|v| v.to_string()));
        push("group", self.group.clone());
        push("peer_group", self.peer_group.clone());
        push("sort", (self.sort != d.sort).then(|| self.sort.to_string()));
        push("dir", (self.dir != d.dir).then(|| self.dir.to_string()));
        push("page", (self.page != d.page).then(|| self.page.to_string()));
        push(
            "per_page",
            (self.per_page != d.per_page).then(|| self.per_page.to_string()),
        );
        out
    }

    /// `?a=b&c=d` (percent-encoded), or empty when everything is default.
    pub fn to_query_string(&self) -> String {
        let params = self.to_params();
        if params.is_empty() {
            return String::new();
        }
        let mut s = String::from("?");
        for (i, (k, v)) in params.iter().enumerate() {
            if i > 0 {
                s.push('&');
            }
            s.push_str(k);
            s.push('=');
            s.push_str(&crate::url::encode_query_value(v));
        }
        s
    }

    /// Whether any filter (not sort or page) is set.
    pub fn is_filtered(&self) -> bool {
        self.availability.is_some()
            || self.management.is_some()
            || self.deploy.is_some()
            || self.deploy_class.is_some()
            || self.sync.is_some()
            || self.alarm.is_some()
            || self.group.is_some()
            || self.peer_group.is_some()
            || self.search.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_filters_and_ignores_empty_and_unknown() {
        let q = SubcloudQuery::from_params([
            ("availability", "offline"),
            ("alarm", "critical"),
            ("deploy", ""),
            ("q", " lyon "),
            ("utm_source", "mail"),
            ("sort", "alarm"),
            ("dir", "desc"),
            ("page", "3"),
        ])
        .unwrap();
        assert_eq!(q.availability, Some(AvailabilityStatus::Offline));
        assert_eq!(q.alarm, Some(AlarmStatus::Critical));
        assert_eq!(q.deploy, None);
        assert_eq!(q.search.as_deref(), Some("lyon"));
        assert_eq!((q.sort, q.dir, q.page), (SortKey::Alarm, SortDir::Desc, 3));
        assert!(q.is_filtered());
    }

    #[test]
    fn reports_the_bad_parameter() {
        let e = SubcloudQuery::from_params([("availability", "sideways")]).unwrap_err();
        assert_eq!(e.field, "availability");
        assert!(e.message.contains("online, offline"), "{}", e.message);
        for (k, v) in [
            ("page", "0"),
            ("page", "-1"),
            ("page", "1e9"),
            ("per_page", "501"),
            ("sort", "name; DROP TABLE subclouds"),
        ] {
            let e = SubcloudQuery::from_params([(k, v)]).unwrap_err();
            assert_eq!(e.field, k, "{k}={v}");
        }
        let long = "x".repeat(65);
        assert_eq!(
            SubcloudQuery::from_params([("q", long.as_str())])
                .unwrap_err()
                .field,
            "q"
        );
    }

    #[test]
    fn query_string_omits_defaults_and_encodes() {
        assert_eq!(SubcloudQuery::default().to_query_string(), "");
        let q = SubcloudQuery {
            search: Some("São Paulo&x=1".into()),
            group: Some("retail east".into()),
            page: 2,
            ..Default::default()
        };
        assert_eq!(
            q.to_query_string(),
            "?q=S%C3%A3o%20Paulo%26x%3D1&group=retail%20east&page=2"
        );
    }

    fn arb_query() -> impl Strategy<Value = SubcloudQuery> {
        (
            proptest::option::of(proptest::sample::select(AvailabilityStatus::ALL)),
            proptest::option::of(proptest::sample::select(DeployStatus::ALL)),
            proptest::option::of(proptest::sample::select(DeployClass::ALL)),
            proptest::option::of(proptest::sample::select(AlarmStatus::ALL)),
            proptest::option::of("[a-zA-Z0-9 _-]{1,20}"),
            proptest::sample::select(SortKey::ALL),
            proptest::sample::select(SortDir::ALL),
            1u32..=1000,
            1u32..=500,
        )
            .prop_map(
                |(availability, deploy, deploy_class, alarm, search, sort, dir, page, per_page)| {
                    SubcloudQuery {
                        availability,
                        deploy,
                        deploy_class,
                        alarm,
                        search: search
                            .map(|s| s.trim().to_string())
                            .filter(|s| !s.is_empty()),
                        sort,
                        dir,
                        page,
                        per_page,
                        ..Default::default()
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn params_round_trip(q in arb_query()) {
            let params = q.to_params();
            let back = SubcloudQuery::from_params(params.iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
            prop_assert_eq!(back, q);
        }

        #[test]
        fn never_panics_on_arbitrary_params(k in "\\PC{0,12}", v in "\\PC{0,80}") {
            let _ = SubcloudQuery::from_params([(k.as_str(), v.as_str())]);
        }
    }
}
