//! Fleet pages: the overview, the subcloud list and one subcloud's detail, with the server
//! functions they read through.

mod detail;
mod list;
mod map;
mod overview;
pub mod timeline;

pub use detail::SubcloudPage;
pub use list::SubcloudsPage;
pub use map::MapPage;
pub(crate) use map::{Legend, MapSvg};
pub use overview::OverviewPage;

use engine::fleet::{
    FilterChoices, FleetMap, Overview, SubcloudDetail, SubcloudPage, SubcloudQuery,
};
use leptos::prelude::*;

use crate::ApiError;

// `background` (true for a refresh caused only by a live update) is read by the server's gate
// from the URL, not here: such refreshes do not extend the session's idle time.

/// Fleet-wide key figures.
#[server(prefix = "/ui", endpoint = "fleet/overview", input = server_fn::codec::GetUrl)]
pub async fn get_fleet_overview(#[server(default)] background: bool) -> Result<Overview, ApiError> {
    let _ = background;
    Ok(crate::error::engine()?.overview().await?)
}

/// One page of the subcloud list.
#[server(prefix = "/ui", endpoint = "fleet/subclouds", input = server_fn::codec::GetUrl)]
pub async fn get_subcloud_page(
    query: SubcloudQuery,
    #[server(default)] background: bool,
) -> Result<SubcloudPage, ApiError> {
    let _ = background;
    Ok(crate::error::engine()?.list_subclouds(&query).await?)
}

/// Everything about one subcloud.
#[server(prefix = "/ui", endpoint = "fleet/subcloud", input = server_fn::codec::GetUrl)]
pub async fn get_subcloud_detail(
    name: String,
    #[server(default)] background: bool,
) -> Result<SubcloudDetail, ApiError> {
    let _ = background;
    Ok(crate::error::engine()?.subcloud_detail(&name).await?)
}

/// The fleet map for one view and filter, given as the page's own URL parameters (`x=…&z=…`):
/// one parser, the engine's, reads both.
#[server(prefix = "/ui", endpoint = "fleet/map", input = server_fn::codec::GetUrl)]
pub async fn get_fleet_map(
    view: String,
    #[server(default)] background: bool,
) -> Result<FleetMap, ApiError> {
    let _ = background;
    let query = engine::fleet::MapQuery::from_query_string("view", &view)?;
    Ok(crate::error::engine()?.fleet_map(&query).await?)
}

/// Names for the group and peer-group filters.
#[server(prefix = "/ui", endpoint = "fleet/filter-choices", input = server_fn::codec::GetUrl)]
pub async fn get_filter_choices() -> Result<FilterChoices, ApiError> {
    Ok(crate::error::engine()?.filter_choices().await?)
}
