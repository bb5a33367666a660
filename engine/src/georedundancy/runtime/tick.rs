//! The peer loop's round: heartbeats and peer availability, fenced groups, takeover decisions
//! (the pure rules are in [`super::super::decide`]; this carries them out), the rehoming ramp,
//! replication of groups and strategies, and automatic failback.

use super::*;

impl Engine {
    /// One round of the peer loop.
    pub(crate) async fn geo_tick(&self) -> Result<()> {
        let Some(geo) = self.geo().cloned() else {
            return Ok(());
        };
        if !geo.lock().running {
            return Ok(());
        }
        let now = Millis::now();
        self.geo_send_heartbeats(&geo, now).await?;
        self.geo_update_availability(&geo, now).await?;
        self.geo_resolve_fenced(&geo).await?;
        // One read for the rest of the tick: a group taken over in `geo_decide` is ramped and
        // replicated from the next tick on.
        let topo = self.geo_topology().await?;
        self.geo_decide(&geo, &topo, now).await?;
        self.geo_ramp(&geo, &topo, now).await?;
        self.geo_replicate(&geo, &topo, now).await?;
        self.geo_replicate_strategies(&geo, now).await?;
        self.geo_failback(&geo, &topo, now).await?;
        Ok(())
    }

    /// Pushes the strategies this controller runs to every available peer: those changed
    /// since the last successful push to it (at most every [`STRATEGY_PUSH_MS`]), and all of
    /// them every `resync_ms`. A copy a little behind is safe: steps carry idempotency keys.
    pub(super) async fn geo_replicate_strategies(
        &self,
        geo: &GeoRuntime,
        now: Millis,
    ) -> Result<()> {
        let resync = i64::try_from(geo.config.resync_ms).unwrap_or(i64::MAX);
        let due: Vec<(PeerConfig, bool)> = {
            let st = geo.lock();
            geo.config
                .peers
                .iter()
                .filter(|p| geo.is_available(&st, &p.name))
                .filter_map(|p| match st.strategies_pushed.get(&p.name) {
                    None => Some((p.clone(), true)),
                    Some((_, full)) if now.0 - full.0 >= resync => Some((p.clone(), true)),
                    Some((at, _)) if now.0 - at.0 >= STRATEGY_PUSH_MS => Some((p.clone(), false)),
                    Some(_) => None,
                })
                .collect()
        };
        if due.is_empty() {
            return Ok(());
        }
        let since = {
            let st = geo.lock();
            due.iter()
                .map(
                    |(p, full)| match (full, st.strategies_pushed.get(&p.name)) {
                        (false, Some((at, _))) => *at,
                        _ => Millis(0),
                    },
                )
                .min()
                .unwrap_or(Millis(0))
        };
        let sync = StrategySync {
            from: geo.config.this.clone(),
            strategies: self.strategy_copies(since).await?,
        };
        for (peer, full) in due {
            if sync.strategies.is_empty() && !full {
                continue;
            }
            match geo.link.sync_strategies(&peer, &sync).await {
                Ok(()) => {
                    let mut st = geo.lock();
                    let e = st
                        .strategies_pushed
                        .entry(peer.name.clone())
                        .or_insert((now, now));
                    e.0 = now;
                    if full {
                        e.1 = now;
                    }
                }
                Err(e) => {
                    tracing::debug!(peer = %peer.name, error = %e, "strategy copies not pushed");
                }
            }
        }
        Ok(())
    }

    /// A peer's copies of the strategies it runs arrived (already authenticated as
    /// `sync.from`).
    pub async fn geo_receive_strategies(
        &self,
        sync: StrategySync,
    ) -> Result<crate::orchestration::CopiesApplied> {
        let geo = self.geo_required()?.clone();
        if !geo.lock().running {
            return Err(Error::Conflict("stopped".into()));
        }
        self.apply_strategy_copies(&sync.from, sync.strategies)
            .await
    }

    pub(super) async fn geo_send_heartbeats(
        &self,
        geo: &Arc<GeoRuntime>,
        now: Millis,
    ) -> Result<()> {
        let due: Vec<PeerConfig> = {
            let mut st = geo.lock();
            let interval = i64::try_from(geo.config.heartbeat.interval_ms).unwrap_or(i64::MAX);
            let mut due = Vec::new();
            for p in &geo.config.peers {
                if let Some(live) = st.peers.get_mut(&p.name) {
                    if live.last_sent.is_none_or(|t| now.0 - t.0 >= interval) {
                        live.last_sent = Some(now);
                        due.push(p.clone());
                    }
                }
            }
            due
        };
        if due.is_empty() {
            return Ok(());
        }
        let hb = self.geo_heartbeat(geo).await?;
        let mut set = tokio::task::JoinSet::new();
        for peer in due {
            let link = Arc::clone(&geo.link);
            let hb = hb.clone();
            set.spawn(async move {
                let started = std::time::Instant::now();
                let answer = link.heartbeat(&peer, &hb).await;
                let rtt = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
                (peer, answer, rtt)
            });
        }
        while let Some(done) = set.join_next().await {
            let Ok((peer, answer, rtt)) = done else {
                continue;
            };
            match answer {
                Ok(theirs) if theirs.from == peer.name => {
                    if let Err(e) = self
                        .geo_heard(geo, &peer.name, Some(rtt.max(1)), theirs)
                        .await
                    {
                        tracing::warn!(peer = %peer.name, error = %e, "heartbeat answer not applied");
                    }
                }
                Ok(theirs) => {
                    tracing::warn!(peer = %peer.name, answered_as = %theirs.from, "heartbeat answered by the wrong controller");
                    if let Some(p) = geo.lock().peers.get_mut(&peer.name) {
                        p.missed = p.missed.saturating_add(1);
                    }
                }
                Err(e) => {
                    tracing::debug!(peer = %peer.name, error = %e, "heartbeat failed");
                    if let Some(p) = geo.lock().peers.get_mut(&peer.name) {
                        p.missed = p.missed.saturating_add(1);
                    }
                }
            }
        }
        Ok(())
    }

    pub(super) async fn geo_update_availability(
        &self,
        geo: &GeoRuntime,
        now: Millis,
    ) -> Result<()> {
        let after = i64::try_from(geo.config.heartbeat.failure_after_ms()).unwrap_or(i64::MAX);
        let lost: Vec<(String, String)> = {
            let mut st = geo.lock();
            let started = st.started.unwrap_or(now);
            let mut lost = Vec::new();
            for (name, p) in st.peers.iter_mut() {
                let since = p.last_ok.unwrap_or(started);
                if p.availability != ControllerAvailability::Unavailable && now.0 - since.0 > after
                {
                    p.availability = ControllerAvailability::Unavailable;
                    p.available_since = None;
                    lost.push((
                        name.clone(),
                        format!(
                            "{name} missed {} heartbeat(s): no answer for {} ms",
                            p.missed,
                            now.0 - since.0
                        ),
                    ));
                }
            }
            lost
        };
        for (name, why) in lost {
            tracing::warn!(peer = %name, "{why}");
            self.geo_set_availability_tx(&name, ControllerAvailability::Unavailable, why)
                .await?;
            self.geo_event(None, format!("{name} unavailable"));
        }
        Ok(())
    }

    /// Groups an agent fenced this controller out of: learn the owner from the peers' claims.
    pub(super) async fn geo_resolve_fenced(&self, geo: &GeoRuntime) -> Result<()> {
        let Some(gateway) = self.agent_gateway() else {
            return Ok(());
        };
        let fenced = std::mem::take(&mut gateway.lock().fenced);
        if fenced.is_empty() {
            return Ok(());
        }
        let claims: Vec<(String, Vec<GroupClaim>)> = {
            let st = geo.lock();
            st.peers
                .iter()
                .filter_map(|(n, p)| Some((n.clone(), p.last_heartbeat.as_ref()?.claims.clone())))
                .collect()
        };
        for (from, c) in claims {
            self.geo_adopt_claims(geo, &from, &c).await?;
        }
        Ok(())
    }

    /// Takeover decisions for unavailable peers.
    /// Decides, for each failed peer, whether its groups wait, move, or are another
    /// controller's to decide ([`decide::step_for`]), and carries the decision out.
    pub(super) async fn geo_decide(
        &self,
        geo: &Arc<GeoRuntime>,
        topo: &Topology,
        now: Millis,
    ) -> Result<()> {
        let this = geo.config.this.clone();
        let (failed, alive, maintenance_here) = {
            let st = geo.lock();
            let failed: Vec<(String, Option<Millis>)> = st
                .peers
                .iter()
                .filter(|(_, p)| p.availability == ControllerAvailability::Unavailable)
                .map(|(n, p)| {
                    (
                        n.clone(),
                        p.last_heartbeat.as_ref().and_then(|h| h.maintenance_until),
                    )
                })
                .collect();
            let alive: Vec<String> = st
                .peers
                .iter()
                .filter(|(_, p)| p.availability == ControllerAvailability::Available)
                .map(|(n, _)| n.clone())
                .collect();
            (
                failed,
                alive,
                st.maintenance_until.is_some_and(|u| u.0 > now.0),
            )
        };
        if failed.is_empty() {
            return Ok(());
        }
        let alive: Vec<&str> = alive.iter().map(String::as_str).collect();
        for (peer, their_maintenance) in failed {
            let orphans: Vec<&GroupRow> = topo
                .groups
                .iter()
                .filter(|g| g.owner == peer && g.state == PeerGroupState::Enabled)
                .collect();
            if orphans.is_empty() {
                continue;
            }
            let Some(row) = topo.controller(&peer) else {
                continue;
            };
            let failed_peer = decide::FailedPeer {
                name: peer.clone(),
                disabled: row.admin == AdminState::Disabled,
                maintenance_until: their_maintenance,
                policy: row.heartbeat.failure_policy,
                delegate_to: row.heartbeat.delegate_to.clone(),
            };
            match decide::step_for(&failed_peer, &this, &alive, maintenance_here, now) {
                decide::Step::Nothing => {}
                decide::Step::AlarmAndWait => {
                    let names: Vec<&str> = orphans.iter().map(|g| g.name.as_str()).collect();
                    if self
                        .geo_controller_alarm(
                            &peer,
                            crate::georedundancy::alarm_ids::GROUP_WAITING_FOR_MIGRATE,
                            "critical",
                            Some(&format!(
                                "{peer} failed; policy alarm: peer groups {} wait for an operator's migrate",
                                names.join(", ")
                            )),
                        )
                        .await?
                    {
                        self.geo_event(None, format!("{peer} groups wait for migrate"));
                    }
                }
                decide::Step::Decide => {
                    self.geo_decide_for(geo, topo, &peer, &orphans, now).await?;
                }
            }
        }
        Ok(())
    }

    /// This controller decides for `peer`'s `orphans`: loads the evidence and the survivors,
    /// lets [`decide`] choose, then takes groups over itself or orders peers to.
    pub(super) async fn geo_decide_for(
        &self,
        geo: &Arc<GeoRuntime>,
        topo: &Topology,
        peer: &str,
        orphans: &[&GroupRow],
        now: Millis,
    ) -> Result<()> {
        let this = geo.config.this.clone();
        let sizes = self.geo_group_sizes().await?;
        let (local, local_rtt) = match self.agent_gateway() {
            Some(gw) => {
                let counts = evidence_counts(gw, &geo.config, now);
                let rtt = counts
                    .iter()
                    .map(|(k, (_, r))| (*k, r.clone()))
                    .collect::<HashMap<_, _>>();
                (
                    counts
                        .into_iter()
                        .map(|(k, (n, _))| (k, n))
                        .collect::<HashMap<_, _>>(),
                    rtt,
                )
            }
            None => (HashMap::new(), HashMap::new()),
        };
        let (remote, ordered) = {
            let st = geo.lock();
            let window = i64::try_from(geo.config.evidence_window_ms).unwrap_or(i64::MAX);
            let peers: Vec<decide::PeerEvidence<'_>> = st
                .peers
                .values()
                .map(|p| decide::PeerEvidence {
                    available: p.availability == ControllerAvailability::Available,
                    last_ok: p.last_ok,
                    evidence: p
                        .last_heartbeat
                        .as_ref()
                        .map_or(&[][..], |h| h.evidence.as_slice()),
                })
                .collect();
            (
                decide::remote_evidence(&peers, peer, window, now),
                st.ordered.clone(),
            )
        };
        let counts: Vec<decide::GroupEvidenceCount> = orphans
            .iter()
            .map(|g| decide::GroupEvidenceCount {
                group: g.name.clone(),
                online: sizes.get(&g.id).map_or(0, |(_, online)| *online),
                seen: local.get(&g.id).copied().unwrap_or(0)
                    + remote.get(&g.name).copied().unwrap_or(0),
            })
            .collect();
        for c in &counts {
            let need = decide::quorum(c.online, geo.config.quorum_percent);
            if c.seen < need {
                tracing::debug!(group = %c.group, seen = c.seen, need, "not enough agent evidence yet");
            }
        }
        let eligible = decide::eligible(&counts, geo.config.quorum_percent, &ordered, now);
        if eligible.is_empty() {
            return Ok(());
        }
        let survivors = self.geo_survivors(geo, topo, Some(peer)).await?;
        let groups: Vec<OrphanGroup> = eligible
            .iter()
            .filter_map(|e| orphans.iter().find(|g| g.name == e.group))
            .map(|g| {
                let total = sizes.get(&g.id).map_or(0, |(total, _)| *total);
                let latency = local_rtt.get(&g.id).cloned().unwrap_or_default();
                orphan(g, total, latency)
            })
            .collect();
        let plan = plan::place(
            &PlanContext {
                failed: peer.to_string(),
                policy: FailurePolicy::Rehome,
                unprotected_sites: 0,
                detection_seconds: 0.0,
                evidence_seconds: 0.0,
                now,
            },
            &groups,
            &survivors,
        );
        if self
            .geo_controller_alarm(
                peer,
                crate::georedundancy::alarm_ids::CAPACITY_SHORTFALL,
                "critical",
                decide::shortfall_text(peer, &plan).as_deref(),
            )
            .await?
        {
            self.geo_event(None, "capacity shortfall".into());
        }
        for d in decide::decisions(peer, &plan, &eligible) {
            let Some(g) = orphans.iter().find(|g| g.name == d.group) else {
                continue;
            };
            geo.lock().ordered.insert(g.name.clone(), now);
            if d.to == this {
                let entry = AuditEntry::system(
                    "geo.takeover",
                    &format!("peer-group:{}", g.name),
                    format!("{this} takes {}: {}", g.name, d.reason),
                );
                match self
                    .geo_take_over_tx(
                        &this,
                        geo.slot(),
                        &g.name,
                        &g.owner,
                        g.epoch,
                        &d.reason,
                        &entry,
                    )
                    .await
                {
                    Ok(epoch) => self.geo_after_move(&g.name, &this, epoch).await?,
                    Err(e) => tracing::warn!(group = %g.name, error = %e, "takeover failed"),
                }
            } else if let Some(target) = geo.peer(&d.to).cloned() {
                let order = TakeoverOrder {
                    from: this.clone(),
                    group: g.name.clone(),
                    owner: g.owner.clone(),
                    epoch: g.epoch,
                    handover: false,
                    reason: d.reason,
                };
                match geo.link.takeover(&target, &order).await {
                    Ok(a) => {
                        self.geo_adopt_answer(&this, &a.group, &a, &d.to).await?;
                    }
                    Err(e) => {
                        tracing::warn!(group = %g.name, to = %d.to, error = %e, "takeover order refused")
                    }
                }
            }
        }
        Ok(())
    }

    /// Admits waiting subclouds of groups moved here, `max_subcloud_rehoming` per second.
    pub(super) async fn geo_ramp(
        &self,
        geo: &GeoRuntime,
        topo: &Topology,
        now: Millis,
    ) -> Result<()> {
        {
            let mut st = geo.lock();
            if st.last_ramp.is_some_and(|t| now.0 - t.0 < 1_000) {
                return Ok(());
            }
            st.last_ramp = Some(now);
        }
        for g in topo.groups.iter().filter(|g| {
            g.owner == geo.config.this && g.migration_status == MigrationStatus::Migrating
        }) {
            let (ids, left) = self
                .geo_admit_tx(&geo.config.this, g.id, g.max_subcloud_rehoming)
                .await?;
            if let Some(gw) = self.agent_gateway() {
                admit(gw, &ids, now);
            }
            if !ids.is_empty() || left == 0 {
                self.geo_event(
                    Some(g.name.clone()),
                    format!("rehomed {}, {left} waiting", ids.len()),
                );
            }
            if left == 0 {
                self.geo_mark_out_of_sync(g.id).await?;
            }
        }
        Ok(())
    }

    /// Pushes this controller's groups to their associated peers when edited, and
    /// periodically so secondary copies show current health.
    pub(super) async fn geo_replicate(
        &self,
        geo: &GeoRuntime,
        topo: &Topology,
        now: Millis,
    ) -> Result<()> {
        let resync = i64::try_from(geo.config.resync_ms).unwrap_or(i64::MAX);
        for g in topo.groups.iter().filter(|g| g.owner == geo.config.this) {
            let targets: Vec<(PeerConfig, bool)> = {
                let st = geo.lock();
                g.associations
                    .iter()
                    .filter(|a| {
                        a.controller != geo.config.this && geo.is_available(&st, &a.controller)
                    })
                    .filter_map(|a| {
                        let peer = geo.peer(&a.controller)?.clone();
                        let edited = a.synced_revision < g.revision
                            || a.sync_status != AssociationSync::InSync;
                        let stale = st
                            .last_sync
                            .get(&(g.name.clone(), a.controller.clone()))
                            .is_none_or(|t| now.0 - t.0 >= resync);
                        (edited || stale).then_some((peer, edited))
                    })
                    .collect()
            };
            if targets.is_empty() {
                continue;
            }
            let latency = self.geo_group_latency(g.id).await?;
            let snapshot = self.geo_snapshot(&geo.config.this, g, latency).await?;
            for (peer, _) in targets {
                geo.lock()
                    .last_sync
                    .insert((g.name.clone(), peer.name.clone()), now);
                let (status, message) = match geo.link.sync(&peer, &snapshot).await {
                    Ok(()) => (AssociationSync::InSync, String::new()),
                    Err(e) => (AssociationSync::Failed, e),
                };
                if self
                    .geo_set_sync(g.id, &peer.name, status, &message, g.revision)
                    .await?
                {
                    self.geo_event(
                        Some(g.name.clone()),
                        format!("sync to {} {status}", peer.name),
                    );
                }
            }
        }
        Ok(())
    }

    /// Groups away from home go back once home has been available for the hold-down.
    pub(super) async fn geo_failback(
        &self,
        geo: &GeoRuntime,
        topo: &Topology,
        now: Millis,
    ) -> Result<()> {
        for g in topo.groups.iter().filter(|g| {
            g.owner == geo.config.this
                && g.home != geo.config.this
                && g.failback_hold_down_s > 0
                && g.migration_status != MigrationStatus::Migrating
        }) {
            let ready = {
                let st = geo.lock();
                st.peers.get(&g.home).is_some_and(|p| {
                    p.availability == ControllerAvailability::Available
                        && p.available_since.is_some_and(|s| {
                            now.0 - s.0
                                >= i64::try_from(g.failback_hold_down_s.saturating_mul(1000))
                                    .unwrap_or(i64::MAX)
                        })
                        && p.last_heartbeat
                            .as_ref()
                            .is_none_or(|h| h.maintenance_until.is_none_or(|u| u.0 <= now.0))
                })
            };
            if !ready {
                continue;
            }
            let req = MigrateRequest {
                peer_group: g.name.clone(),
                to: g.home.clone(),
            };
            let actor = Actor::system();
            if let Err(e) = self
                .migrate_as(&actor, &req, Some("automatic failback"))
                .await
            {
                tracing::warn!(group = %g.name, error = %e, "automatic failback failed");
            }
        }
        Ok(())
    }
}
