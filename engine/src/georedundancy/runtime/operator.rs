//! Operators' geo-redundancy actions: migrate (with its preview), fail back, pause automatic
//! takeover, and the failure drill ("what if this controller dies now?", nothing moves).

use super::*;

impl Engine {
    /// What migrating a group would do (nothing changes).
    pub async fn migrate_preview(&self, req: &MigrateRequest) -> Result<MigratePreview> {
        let geo = self.geo_required()?;
        let topo = self.geo_topology().await?;
        let g = topo
            .group(&req.peer_group)
            .ok_or_else(|| Error::not_found("peer group", req.peer_group.clone()))?;
        let target = topo
            .controller(&req.to)
            .ok_or_else(|| Error::not_found("system controller", req.to.clone()))?;
        let sizes = self.geo_group_sizes().await?;
        let (sites, online) = sizes.get(&g.id).copied().unwrap_or((0, 0));
        let survivors = self.geo_survivors(geo, &topo, None).await?;
        let (owner_available, target_available, evidence) = {
            let st = geo.lock();
            (
                geo.is_available(&st, &g.owner),
                geo.is_available(&st, &target.name),
                0u64,
            )
        };
        let evidence = match self.agent_gateway() {
            Some(gw) => evidence_counts(gw, &geo.config, Millis::now())
                .get(&g.id)
                .map_or(evidence, |(n, _)| *n),
            None => evidence,
        };
        let target_headroom = survivors
            .iter()
            .find(|s| s.name == target.name)
            .map_or(0, |s| {
                s.capacity
                    .saturating_sub(s.reserved_capacity)
                    .saturating_sub(s.managed)
            });
        let mut warnings = Vec::new();
        let mut allowed = true;
        if g.owner == target.name {
            warnings.push(format!("{} already owns {}", target.name, g.name));
            allowed = false;
        }
        if !g.associations.iter().any(|a| a.controller == target.name) {
            warnings.push(format!("{} is not associated with {}", target.name, g.name));
            allowed = false;
        }
        if !target_available {
            warnings.push(format!("{} does not answer heartbeats", target.name));
            allowed = false;
        }
        if target_headroom < sites {
            warnings.push(format!(
                "{} has room for {target_headroom} more sites beyond its reserve; the group has {sites}",
                target.name
            ));
        }
        if owner_available {
            warnings.push(format!("{} is available: it hands the group over", g.owner));
        } else {
            warnings.push(format!(
                "{} does not answer: {evidence} of {online} online sites' agents confirm they cannot reach it",
                g.owner
            ));
        }
        let strategies: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT st.strategy_id) FROM strategy_steps st JOIN strategies x ON x.id = st.strategy_id \
             JOIN subclouds s ON s.id = st.subcloud_id WHERE s.peer_group_id = $1 \
             AND x.state IN ('applying', 'waiting for approval') AND st.state IN ('initial', 'queued', 'running')",
        )
        .bind(g.id)
        .fetch_one(self.store.pool())
        .await?;
        if strategies > 0 {
            warnings.push(format!(
                "{strategies} running strategy(ies) have steps in this group: they pause on {}",
                g.owner
            ));
        }
        Ok(MigratePreview {
            group: g.name.clone(),
            from: g.owner.clone(),
            to: target.name.clone(),
            sites,
            owner_available,
            target_headroom,
            evidence_unreachable: evidence,
            online_sites: online,
            rehoming_seconds: sites.div_ceil(u64::from(g.max_subcloud_rehoming.max(1))),
            warnings,
            allowed,
        })
    }

    /// Moves a peer group to another controller (operators). The owner hands it over; if the
    /// owner is down, the target takes it over (the operator's decision replaces evidence, as
    /// with StarlingX's `alarm` policy).
    pub async fn migrate_peer_group(
        &self,
        actor: &Actor,
        req: &MigrateRequest,
    ) -> Result<TakeoverAnswer> {
        actor.require(Permission::Failover)?;
        self.migrate_as(actor, req, None).await
    }

    /// Moves a group back to its home controller.
    pub async fn fail_back(&self, actor: &Actor, group: &str) -> Result<TakeoverAnswer> {
        actor.require(Permission::Failover)?;
        let topo = self.geo_topology().await?;
        let g = topo
            .group(group)
            .ok_or_else(|| Error::not_found("peer group", group))?;
        let req = MigrateRequest {
            peer_group: g.name.clone(),
            to: g.home.clone(),
        };
        self.migrate_as(actor, &req, None).await
    }

    pub(super) async fn migrate_as(
        &self,
        actor: &Actor,
        req: &MigrateRequest,
        on_behalf: Option<&str>,
    ) -> Result<TakeoverAnswer> {
        let geo = self.geo_required()?.clone();
        let preview = self.migrate_preview(req).await?;
        if !preview.allowed {
            return Err(Error::Conflict(preview.warnings.join("; ")));
        }
        let this = geo.config.this.clone();
        let topo = self.geo_topology().await?;
        let g = topo
            .group(&req.peer_group)
            .ok_or_else(|| Error::not_found("peer group", req.peer_group.clone()))?
            .clone();
        let who = match on_behalf {
            Some(by) => format!("{} via {by}", actor.name),
            None => actor.name.clone(),
        };
        let reason = format!("migrated by {who}");
        let answer = if g.owner == this {
            // Hand over: the target takes it at a new epoch, then this controller adopts.
            let peer = geo
                .peer(&req.to)
                .ok_or_else(|| Error::not_found("peer", req.to.clone()))?
                .clone();
            let order = TakeoverOrder {
                from: this.clone(),
                group: g.name.clone(),
                owner: this.clone(),
                epoch: g.epoch,
                handover: true,
                reason: reason.clone(),
            };
            let answer =
                geo.link.takeover(&peer, &order).await.map_err(|e| {
                    Error::Conflict(format!("{} refused the handover: {e}", req.to))
                })?;
            self.geo_adopt_answer(&this, &g.name, &answer, &req.to)
                .await?;
            answer
        } else if preview.owner_available {
            if on_behalf.is_some() {
                return Err(Error::Conflict(format!("{this} does not own {}", g.name)));
            }
            let owner = geo
                .peer(&g.owner)
                .ok_or_else(|| Error::not_found("peer", g.owner.clone()))?
                .clone();
            let answer = geo
                .link
                .migrate(&owner, req, &actor.name)
                .await
                .map_err(|e| Error::Conflict(format!("{} refused: {e}", g.owner)))?;
            self.geo_adopt_answer(&this, &g.name, &answer, &g.owner)
                .await?;
            answer
        } else if req.to == this {
            let entry = actor.audit(
                "geo.migrate",
                &format!("peer-group:{}", g.name),
                format!(
                    "{this} takes {} from unavailable {}: {reason}",
                    g.name, g.owner
                ),
            );
            let epoch = self
                .geo_take_over_tx(
                    &this,
                    geo.slot(),
                    &g.name,
                    &g.owner,
                    g.epoch,
                    &reason,
                    &entry,
                )
                .await?;
            self.geo_after_move(&g.name, &this, epoch).await?;
            TakeoverAnswer {
                group: g.name.clone(),
                owner: this.clone(),
                epoch,
            }
        } else {
            let peer = geo
                .peer(&req.to)
                .ok_or_else(|| Error::not_found("peer", req.to.clone()))?
                .clone();
            let order = TakeoverOrder {
                from: this.clone(),
                group: g.name.clone(),
                owner: g.owner.clone(),
                epoch: g.epoch,
                handover: false,
                reason: reason.clone(),
            };
            let answer = geo
                .link
                .takeover(&peer, &order)
                .await
                .map_err(|e| Error::Conflict(format!("{} refused: {e}", req.to)))?;
            self.geo_adopt_answer(&this, &g.name, &answer, &req.to)
                .await?;
            answer
        };
        if g.owner != this || answer.owner != this {
            let mut tx = self.store.begin_write().await?;
            crate::audit::record(
                &mut tx,
                &actor.audit(
                    "geo.migrate",
                    &format!("peer-group:{}", g.name),
                    format!(
                        "{} -> {} at epoch {} ({reason})",
                        g.owner, answer.owner, answer.epoch
                    ),
                ),
            )
            .await?;
            tx.commit().await?;
        }
        Ok(answer)
    }

    /// Pauses (maintenance, for the configured maintenance timeout) or resumes automatic
    /// takeover by this controller. Peers see it in heartbeats and do not take this
    /// controller's groups while it lasts.
    pub async fn set_takeover_paused(&self, actor: &Actor, paused: bool) -> Result<Option<Millis>> {
        actor.require(Permission::Failover)?;
        let geo = self.geo_required()?;
        let until = paused.then(|| {
            Millis(
                Millis::now().0.saturating_add(
                    i64::try_from(
                        geo.config
                            .heartbeat
                            .maintenance_timeout_s
                            .saturating_mul(1000),
                    )
                    .unwrap_or(i64::MAX),
                ),
            )
        });
        geo.lock().maintenance_until = until;
        let mut tx = self.store.begin_write().await?;
        crate::audit::record(
            &mut tx,
            &actor.audit(
                if paused {
                    "geo.takeover_paused"
                } else {
                    "geo.takeover_resumed"
                },
                &format!("controller:{}", geo.config.this),
                match until {
                    Some(u) => format!("automatic takeover paused until {}", u.to_iso()),
                    None => "automatic takeover resumed".into(),
                },
            ),
        )
        .await?;
        tx.commit().await?;
        self.geo_event(None, "maintenance".into());
        Ok(until)
    }

    /// Controllers that could take groups now (this one and the available peers), with
    /// capacity and load; `excluding` a controller assumed failed.
    pub(super) async fn geo_survivors(
        &self,
        geo: &GeoRuntime,
        topo: &Topology,
        excluding: Option<&str>,
    ) -> Result<Vec<Survivor>> {
        let own_managed = self.geo_managed_count(&geo.config.this).await?;
        let st = geo.lock();
        let mut out = Vec::new();
        for c in &topo.controllers {
            if Some(c.name.as_str()) == excluding || c.admin == AdminState::Disabled {
                continue;
            }
            if c.name == geo.config.this {
                out.push(Survivor {
                    name: c.name.clone(),
                    capacity: geo.config.capacity,
                    reserved_capacity: geo.config.reserved_capacity,
                    managed: own_managed,
                });
                continue;
            }
            if !geo.is_available(&st, &c.name) {
                continue;
            }
            let hb = st
                .peers
                .get(&c.name)
                .and_then(|p| p.last_heartbeat.as_ref());
            out.push(Survivor {
                name: c.name.clone(),
                capacity: hb.map_or(c.capacity, |h| h.capacity),
                reserved_capacity: hb.map_or(c.reserved_capacity, |h| h.reserved_capacity),
                managed: hb.map_or(0, |h| h.managed),
            });
        }
        Ok(out)
    }

    /// "What if `controller` fails now?": the plan, without changing anything.
    pub async fn takeover_drill(&self, controller: &str) -> Result<TakeoverPlan> {
        let geo = self.geo_required()?.clone();
        let topo = self.geo_topology().await?;
        let failed = topo
            .controller(controller)
            .ok_or_else(|| Error::not_found("system controller", controller))?;
        let survivors = self.geo_survivors(&geo, &topo, Some(controller)).await?;
        let sizes = self.geo_group_sizes().await?;
        let latency = geo.lock().latency.clone();
        let mut groups = Vec::new();
        for g in topo
            .groups
            .iter()
            .filter(|g| g.owner == controller && g.state == PeerGroupState::Enabled)
        {
            let measured = match latency.get(&g.name) {
                Some(l) => l.clone(),
                None => self.geo_group_latency(g.id).await?,
            };
            groups.push(orphan(g, sizes.get(&g.id).map_or(0, |s| s.0), measured));
        }
        let unprotected = self
            .geo_unprotected()
            .await?
            .into_iter()
            .find(|(n, _)| n == controller)
            .map_or(0, |(_, n)| n);
        let interval = if controller == geo.config.this {
            geo.config.heartbeat.clone()
        } else {
            failed.heartbeat.clone()
        };
        Ok(plan::place(
            &PlanContext {
                failed: controller.to_string(),
                policy: interval.failure_policy,
                unprotected_sites: unprotected,
                detection_seconds: interval.failure_after_ms() as f64 / 1000.0,
                evidence_seconds: geo.config.evidence_window_ms as f64 / 3000.0,
                now: Millis::now(),
            },
            &groups,
            &survivors,
        ))
    }
}
