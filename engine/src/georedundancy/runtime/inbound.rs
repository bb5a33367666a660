//! What peers tell this controller: heartbeats (and the claims and evidence they carry),
//! replicated copies, takeover orders and migrate requests; and what a confirmed move changes here.

use super::*;

impl Engine {
    /// This controller's heartbeat.
    pub(super) async fn geo_heartbeat(&self, geo: &GeoRuntime) -> Result<Heartbeat> {
        let topo = self.geo_topology().await?;
        let managed = self.geo_managed_count(&geo.config.this).await?;
        let (hears, maintenance_until) = {
            let st = geo.lock();
            let hears = st
                .peers
                .iter()
                .filter(|(_, p)| p.availability == ControllerAvailability::Available)
                .map(|(n, _)| n.clone())
                .collect();
            (hears, st.maintenance_until)
        };
        let counts = self
            .agent_gateway()
            .map(|gw| evidence_counts(gw, &geo.config, Millis::now()))
            .unwrap_or_default();
        let evidence = topo
            .groups
            .iter()
            .filter_map(|g| {
                let (n, _) = counts.get(&g.id)?;
                (*n > 0).then(|| GroupEvidence {
                    group: g.name.clone(),
                    owner: g.owner.clone(),
                    owner_unreachable: *n,
                })
            })
            .collect();
        Ok(Heartbeat {
            from: geo.config.this.clone(),
            sent_at: Millis::now(),
            capacity: geo.config.capacity,
            reserved_capacity: geo.config.reserved_capacity,
            managed,
            maintenance_until,
            claims: topo
                .groups
                .iter()
                .map(|g| GroupClaim {
                    group: g.name.clone(),
                    owner: g.owner.clone(),
                    epoch: g.epoch,
                })
                .collect(),
            evidence,
            hears,
        })
    }

    /// A peer's heartbeat arrived (already authenticated): it is alive; adopt any higher
    /// claim; answer with this controller's heartbeat.
    pub async fn geo_receive_heartbeat(&self, hb: Heartbeat) -> Result<Heartbeat> {
        let geo = self.geo_required()?.clone();
        if !geo.lock().running {
            return Err(Error::Conflict("stopped".into()));
        }
        self.geo_heard(&geo, &hb.from, None, hb.clone()).await?;
        self.geo_heartbeat(&geo).await
    }

    /// Records an answered heartbeat from `peer`, adopts higher claims.
    pub(super) async fn geo_heard(
        &self,
        geo: &GeoRuntime,
        peer: &str,
        rtt_ms: Option<u32>,
        hb: Heartbeat,
    ) -> Result<()> {
        let now = Millis::now();
        let became_available = {
            let mut st = geo.lock();
            let Some(p) = st.peers.get_mut(peer) else {
                return Err(Error::not_found("peer", peer));
            };
            p.last_ok = Some(now);
            p.missed = 0;
            if rtt_ms.is_some() {
                p.rtt_ms = rtt_ms;
            }
            p.last_heartbeat = Some(hb.clone());
            let was = p.availability;
            if was != ControllerAvailability::Available {
                p.availability = ControllerAvailability::Available;
                p.available_since = Some(now);
                true
            } else {
                false
            }
        };
        if became_available {
            self.geo_set_availability_tx(
                peer,
                ControllerAvailability::Available,
                format!("{peer} answers heartbeats"),
            )
            .await?;
            self.geo_event(None, format!("{peer} available"));
        }
        self.geo_adopt_claims(geo, peer, &hb.claims).await
    }

    pub(super) async fn geo_adopt_claims(
        &self,
        geo: &GeoRuntime,
        from: &str,
        claims: &[GroupClaim],
    ) -> Result<()> {
        let topo = self.geo_topology().await?;
        let mut changed = false;
        for c in claims {
            let Some(g) = topo.group(&c.group) else {
                continue;
            };
            if c.epoch > g.epoch
                && self
                    .geo_adopt_tx(&geo.config.this, &c.group, &c.owner, c.epoch, from)
                    .await?
            {
                tracing::info!(group = %c.group, owner = %c.owner, epoch = c.epoch, from, "learned a new owner");
                self.geo_event(
                    Some(c.group.clone()),
                    format!("owner {} epoch {}", c.owner, c.epoch),
                );
                changed = true;
            }
        }
        if changed {
            self.geo_refresh_routes().await?;
            self.wake_orchestrator();
        }
        Ok(())
    }

    pub(super) fn wake_orchestrator(&self) {
        if let Some(w) = self.orchestrator_wake.get() {
            w.notify_one();
        }
    }

    /// An owner's replicated copy arrived (already authenticated as `snapshot.from`).
    pub async fn geo_receive_sync(&self, snapshot: GroupSnapshot) -> Result<()> {
        let geo = self.geo_required()?.clone();
        if !geo.lock().running {
            return Err(Error::Conflict("stopped".into()));
        }
        let topo = self.geo_topology().await?;
        let before = topo
            .group(&snapshot.group)
            .map(|g| (g.owner.clone(), g.epoch));
        let creds = self
            .geo_apply_snapshot_tx(&geo.config.this, &snapshot)
            .await?;
        geo.lock()
            .latency
            .insert(snapshot.group.clone(), snapshot.agent_latency_ms.clone());
        if let Some(gateway) = self.agent_gateway() {
            load_credentials(gateway, &creds);
        }
        if before != Some((snapshot.owner.clone(), snapshot.epoch)) {
            self.geo_refresh_routes().await?;
            self.geo_event(Some(snapshot.group.clone()), "replicated".into());
        }
        Ok(())
    }

    /// A takeover order arrived (already authenticated as `order.from`).
    pub async fn geo_receive_takeover(&self, order: TakeoverOrder) -> Result<TakeoverAnswer> {
        let geo = self.geo_required()?.clone();
        let this = geo.config.this.clone();
        {
            let st = geo.lock();
            if !st.running {
                return Err(Error::Conflict("stopped".into()));
            }
            if order.handover {
                if order.from != order.owner {
                    return Err(Error::Conflict(format!(
                        "only the owner ({}) can hand {} over",
                        order.owner, order.group
                    )));
                }
            } else if geo.is_available(&st, &order.owner) {
                // The evidence rule, on the receiving side too: a controller that still hears
                // the owner does not take its group.
                return Err(Error::Conflict(format!(
                    "{this} still hears {}: not taking {}",
                    order.owner, order.group
                )));
            }
        }
        let reason = format!("{} (ordered by {})", order.reason, order.from);
        let entry = AuditEntry::system(
            "geo.takeover",
            &format!("peer-group:{}", order.group),
            format!("{this} takes {}: {reason}", order.group),
        );
        let epoch = self
            .geo_take_over_tx(
                &this,
                geo.slot(),
                &order.group,
                &order.owner,
                order.epoch,
                &reason,
                &entry,
            )
            .await?;
        self.geo_after_move(&order.group, &this, epoch).await?;
        Ok(TakeoverAnswer {
            group: order.group,
            owner: this,
            epoch,
        })
    }

    /// Records the move of `group` another controller confirmed (`answer`), learned from
    /// `from`.
    pub(super) async fn geo_adopt_answer(
        &self,
        this: &str,
        group: &str,
        answer: &TakeoverAnswer,
        from: &str,
    ) -> Result<()> {
        self.geo_adopt_tx(this, group, &answer.owner, answer.epoch, from)
            .await?;
        self.geo_after_move(group, &answer.owner, answer.epoch)
            .await
    }

    pub(super) async fn geo_after_move(&self, group: &str, owner: &str, epoch: u64) -> Result<()> {
        tracing::info!(group, owner, epoch, "peer group moved");
        self.geo_refresh_routes().await?;
        self.geo_event(
            Some(group.to_string()),
            format!("owner {owner} epoch {epoch}"),
        );
        if let Some(geo) = self.geo() {
            geo.wake.notify_one();
        }
        // A strategy taken over with the group re-issues its in-flight steps now.
        self.wake_orchestrator();
        Ok(())
    }

    /// A peer asks this controller (the owner) to migrate one of its groups on an operator's
    /// behalf.
    pub async fn geo_receive_migrate(
        &self,
        req: MigrateRequest,
        by: &str,
    ) -> Result<TakeoverAnswer> {
        let actor = Actor::system();
        self.migrate_as(&actor, &req, Some(by)).await
    }
}
