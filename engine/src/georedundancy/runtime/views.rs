//! Read views of geo-redundancy for the pages and the API: the overview of controllers and
//! peer groups, one group's page, agent latencies.

use super::*;

impl Engine {
    /// Median agent round trip from a group's sites to each controller (from what its
    /// agents reported here).
    pub(super) async fn geo_group_latency(&self, group_id: i64) -> Result<Vec<(String, u32)>> {
        use sqlx::Row;
        let mut by: HashMap<String, Vec<i64>> = HashMap::new();
        for r in sqlx::query(
            "SELECT r.controller, r.rtt_ms FROM subcloud_reachability r JOIN subclouds s ON s.id = r.subcloud_id \
             WHERE s.peer_group_id = $1 AND r.rtt_ms IS NOT NULL",
        )
        .bind(group_id)
        .fetch_all(self.store.pool())
        .await?
        {
            by.entry(r.try_get(0)?).or_default().push(r.try_get(1)?);
        }
        Ok(medians(by))
    }

    /// Everything the geo-redundancy pages show.
    pub async fn geo_overview(&self) -> Result<GeoOverview> {
        let topo = self.geo_topology().await?;
        let sites = self.geo_group_sites().await?;
        let alarms = self.geo_controller_alarms().await?;
        let geo = self.geo().cloned();
        let this = geo.as_ref().map_or_else(
            || {
                self.agent_gateway().map_or_else(
                    || "local".to_string(),
                    |g| g.policy().this_controller.name.clone(),
                )
            },
            |g| g.config.this.clone(),
        );
        let mut managed = HashMap::new();
        for c in &topo.controllers {
            managed.insert(c.name.clone(), self.geo_managed_count(&c.name).await?);
        }
        let (live, maintenance_until) = match &geo {
            Some(g) => {
                let st = g.lock();
                (st.peers.clone(), st.maintenance_until)
            }
            None => (HashMap::new(), None),
        };
        let peers = topo
            .controllers
            .iter()
            .map(|c| {
                let is_self = c.name == this;
                let l = live.get(&c.name);
                let hb = l.and_then(|p| p.last_heartbeat.as_ref());
                SystemPeer {
                    id: c.id,
                    uuid: c.uuid.clone(),
                    name: c.name.clone(),
                    is_self,
                    manager_endpoint: c.endpoint.clone(),
                    gateway_address: c.gateway_address.clone(),
                    administrative_state: c.admin,
                    heartbeat: c.heartbeat.clone(),
                    availability: match (is_self, l) {
                        (true, _) => ControllerAvailability::Available,
                        (false, Some(p)) => p.availability,
                        (false, None) => c.availability,
                    },
                    availability_changed_at: c.availability_changed_at,
                    region: c.region.clone(),
                    city: c.city.clone(),
                    lat: c.lat,
                    lon: c.lon,
                    capacity: hb.map_or(c.capacity, |h| h.capacity),
                    reserved_capacity: hb.map_or(c.reserved_capacity, |h| h.reserved_capacity),
                    managed: managed.get(&c.name).copied().unwrap_or(0),
                    last_seen: if is_self {
                        Some(Millis::now())
                    } else {
                        l.and_then(|p| p.last_ok)
                    },
                    latency_ms: l.and_then(|p| p.rtt_ms),
                    missed: l.map_or(0, |p| p.missed),
                    maintenance_until: if is_self {
                        maintenance_until
                    } else {
                        hb.and_then(|h| h.maintenance_until)
                    },
                    active_alarms: alarms.get(&c.id).cloned().unwrap_or_default(),
                }
            })
            .collect();
        let mut groups = Vec::with_capacity(topo.groups.len());
        for g in &topo.groups {
            groups.push(
                self.group_view(g, sites.get(&g.id).cloned().unwrap_or_default(), 5)
                    .await?,
            );
        }
        Ok(GeoOverview {
            this_controller: this,
            enabled: geo.is_some(),
            maintenance_until,
            peers,
            groups,
            unprotected: self.geo_unprotected().await?,
            as_of: Millis::now(),
        })
    }

    pub(super) async fn group_view(
        &self,
        g: &GroupRow,
        sites: GroupSites,
        history: i64,
    ) -> Result<PeerGroupView> {
        Ok(PeerGroupView {
            id: g.id,
            name: g.name.clone(),
            priority: g.priority,
            state: g.state,
            max_subcloud_rehoming: g.max_subcloud_rehoming,
            owner: g.owner.clone(),
            home: g.home.clone(),
            owner_epoch: g.epoch,
            owned_since: g.owned_since,
            migration_status: g.migration_status,
            failback_hold_down_s: g.failback_hold_down_s,
            revision: g.revision,
            sites,
            associations: g
                .associations
                .iter()
                .map(|a| Association {
                    controller: a.controller.clone(),
                    priority: a.priority,
                    association_type: a.association_type,
                    sync_status: a.sync_status,
                    sync_message: a.sync_message.clone(),
                    synced_at: a.synced_at,
                })
                .collect(),
            history: self.geo_history(g.id, history).await?,
        })
    }

    /// One peer group's page.
    pub async fn peer_group_view(&self, name: &str) -> Result<PeerGroupView> {
        let topo = self.geo_topology().await?;
        let g = topo
            .group(name)
            .ok_or_else(|| Error::not_found("peer group", name))?;
        let sites = self.geo_group_sites().await?;
        self.group_view(g, sites.get(&g.id).cloned().unwrap_or_default(), 100)
            .await
    }
}
