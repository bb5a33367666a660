//! Fleet pages: the overview, the subcloud list and one subcloud's detail, with the server
//! functions they read through.

mod detail;
mod list;
mod overview;

pub use detail::SubcloudPage;
pub use list::SubcloudsPage;
pub use overview::OverviewPage;

use engine::fleet::{FilterChoices, Overview, SubcloudDetail, SubcloudPage, SubcloudQuery};
use leptos::prelude::*;

use crate::ApiError;

/// Fleet-wide key figures.
#[server(prefix = "/ui", endpoint = "fleet/overview", input = server_fn::codec::GetUrl)]
pub async fn get_fleet_overview() -> Result<Overview, ApiError> {
    Ok(crate::error::engine()?.overview().await?)
}

/// One page of the subcloud list.
#[server(prefix = "/ui", endpoint = "fleet/subclouds", input = server_fn::codec::GetUrl)]
pub async fn get_subcloud_page(query: SubcloudQuery) -> Result<SubcloudPage, ApiError> {
    Ok(crate::error::engine()?.list_subclouds(&query).await?)
}

/// Everything about one subcloud.
#[server(prefix = "/ui", endpoint = "fleet/subcloud", input = server_fn::codec::GetUrl)]
pub async fn get_subcloud_detail(name: String) -> Result<SubcloudDetail, ApiError> {
    Ok(crate::error::engine()?.subcloud_detail(&name).await?)
}

/// Names for the group and peer-group filters.
#[server(prefix = "/ui", endpoint = "fleet/filter-choices", input = server_fn::codec::GetUrl)]
pub async fn get_filter_choices() -> Result<FilterChoices, ApiError> {
    Ok(crate::error::engine()?.filter_choices().await?)
}
