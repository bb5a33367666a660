//! Creating a strategy. One form, whose field names are those `NewStrategy::from_params`
//! reads:
//!
//! - Without JavaScript it is a plain GET form: its Preview button reloads this page with the
//!   fields in the URL, and the server renders the dry run (waves, sites, ETA) or the first
//!   field it refuses next to the form. Its Create button posts the same fields to the create
//!   server function (`formaction`), which redirects to the new strategy's page, or back here
//!   with the fields and the refusal.
//! - With JavaScript the preview follows the form as it is edited (debounced; the URL is
//!   replaced in place, so it can still be shared), fields that do not apply to the chosen type
//!   or target are hidden, and Create calls the server function and moves to the new strategy.
//!
//! The form is drawn once from the URL and never redrawn while it is edited: only the preview
//! follows.

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::NavigateOptions;

use super::list::may_orchestrate;
use super::{
    field_applies, field_label, form_fields, form_query, get_software_releases,
    get_strategy_preview, type_label, CreateStrategy, PreviewOutcome, FORM_FIELDS,
};
use crate::auth::get_current_user;
use crate::components::{group_digits, ErrorPanel, TableScroll};
use crate::ApiError;
use engine::orchestration::{
    format_duration, ApplyType, BudgetAction, CanaryApproval, OfflinePolicy, StrategyPreview,
    StrategyType,
};

/// The URL's form fields, as `form_fields` keeps them.
fn url_fields(m: &leptos_router::params::ParamsMap) -> Vec<(String, String)> {
    let raw: Vec<(&'static str, String)> = FORM_FIELDS
        .iter()
        .filter_map(|k| m.get(k).map(|v| (*k, v)))
        .collect();
    form_fields(raw.iter().map(|(k, v)| (*k, v.as_str())))
}

#[component]
pub fn NewStrategyPage() -> impl IntoView {
    let params = use_query_map();
    // The form's values: read from the URL once.
    let initial: BTreeMap<&'static str, String> = params.with_untracked(|m| {
        FORM_FIELDS
            .iter()
            .filter_map(|k| m.get(k).map(|v| (*k, v)))
            .collect()
    });
    let value = |k: &str| initial.get(k).cloned().unwrap_or_default();
    let flag = |k: &str| {
        initial
            .get(k)
            .is_some_and(|v| matches!(v.as_str(), "on" | "true" | "1" | "yes"))
    };
    // What the preview shows: the URL's fields (followed in place as the form is edited).
    let fields = Memo::new(move |_| params.with(url_fields));
    let preview = Resource::new(
        move || fields.get(),
        |f| async move {
            if !f.iter().any(|(k, _)| k == "type") {
                return Ok(None);
            }
            get_strategy_preview(f.into_iter().collect())
                .await
                .map(Some)
        },
    );
    let releases = Resource::new(|| (), |_| get_software_releases());
    let choices = Resource::new(|| (), |_| crate::fleet::get_filter_choices());
    let me = Resource::new(|| (), |_| get_current_user());
    let create = ServerAction::<CreateStrategy>::new();

    // Browser only (Effects do not run on the server): JavaScript is on, so fields that do not
    // apply can be hidden; after hydration, so the first render matches the server's.
    let js = RwSignal::new(false);
    Effect::new(move |_| js.set(true));
    let initial_type = {
        let t = value("type");
        if t.parse::<StrategyType>().is_ok() {
            t
        } else {
            StrategyType::SwDeploy.as_str().to_string()
        }
    };
    let kind = RwSignal::new(initial_type.clone());
    let initial_target = {
        let t = value("target");
        if t.is_empty() {
            "all".to_string()
        } else {
            t
        }
    };
    let target_kind = RwSignal::new(initial_target.clone());
    let hide_type_field = move |field: &'static str| {
        move || js.get() && !field_applies(field, kind.with(|k| k.parse().ok()))
    };
    let hide_target_field = move |kinds: &'static [&'static str]| {
        move || js.get() && !target_kind.with(|t| kinds.contains(&t.as_str()))
    };
    let group_target = move || js.get() && target_kind.with(|t| t == "group");

    let navigate = use_navigate();
    {
        let navigate = navigate.clone();
        Effect::new(move |_| {
            if let Some(Ok(id)) = create.value().get() {
                navigate(&format!("/orchestration/{id}"), Default::default());
            }
        });
    }
    let form_ref = NodeRef::<leptos::html::Form>::new();
    // The form's fields as they are now (browser only).
    let current_fields = move || -> Vec<(String, String)> {
        #[cfg(feature = "hydrate")]
        if let Some(form) = form_ref.get_untracked() {
            let pairs = browser::form_pairs(&form);
            return form_fields(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        Vec::new()
    };
    // Shows the preview of the form as it is now: the URL follows the form, in place.
    let preview_now = {
        let navigate = navigate.clone();
        move || {
            let f = current_fields();
            if f == fields.get_untracked() {
                return;
            }
            // Another request: the last refusal of Create no longer applies to it.
            create.value().set(None);
            let qs = form_query(&f);
            let url = if qs.is_empty() {
                "/orchestration/new".to_string()
            } else {
                format!("/orchestration/new?{qs}")
            };
            navigate(
                &url,
                NavigateOptions {
                    replace: true,
                    scroll: false,
                    ..Default::default()
                },
            );
        }
    };
    let edits = StoredValue::new(0u64);
    let on_edit = {
        let preview_now = preview_now.clone();
        move |_: leptos::ev::Event| {
            let n = edits.get_value() + 1;
            edits.set_value(n);
            let preview_now = preview_now.clone();
            set_timeout(
                move || {
                    if edits.get_value() == n {
                        preview_now();
                    }
                },
                std::time::Duration::from_millis(350),
            );
        }
    };
    let on_submit = {
        let preview_now = preview_now.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let create_clicked = ev
                .submitter()
                .is_some_and(|s| s.has_attribute("data-create"));
            if create_clicked {
                create.dispatch(CreateStrategy {
                    fields: current_fields().into_iter().collect(),
                });
            } else {
                edits.update_value(|n| *n += 1);
                preview_now();
            }
        }
    };

    let type_options: Vec<(String, String)> = StrategyType::ALL
        .iter()
        .map(|t| {
            (
                t.as_str().to_string(),
                format!("{} ({})", type_label(*t), t.as_str()),
            )
        })
        .collect();
    let target_options: Vec<(String, String)> = [
        ("all", "All subclouds"),
        ("subcloud", "One subcloud"),
        ("group", "A subcloud group"),
        ("peer_group", "A peer group"),
        ("filter", "Subclouds matching a filter"),
    ]
    .iter()
    .map(|(v, l)| (v.to_string(), l.to_string()))
    .collect();
    let text_options = |first: &str, all: &[&str]| -> Vec<(String, String)> {
        let mut v = vec![(String::new(), first.to_string())];
        v.extend(all.iter().map(|s| (s.to_string(), s.to_string())));
        v
    };
    let names = |all: &[&'static str]| -> Vec<(String, String)> {
        all.iter().map(|s| (s.to_string(), s.to_string())).collect()
    };
    let apply_types: Vec<&str> = ApplyType::ALL.iter().map(|a| a.as_str()).collect();
    let offline: Vec<&'static str> = OfflinePolicy::ALL.iter().map(|a| a.as_str()).collect();
    let approvals: Vec<&'static str> = CanaryApproval::ALL.iter().map(|a| a.as_str()).collect();
    let budget_actions: Vec<&'static str> = BudgetAction::ALL.iter().map(|a| a.as_str()).collect();
    // The rollout settings start folded unless the URL sets one of them (a default does not
    // count): the form stays short on a phone.
    let settings_open = [
        ("apply_type", ""),
        ("max_parallel", ""),
        ("offline_policy", OfflinePolicy::Wait.as_str()),
        ("step_timeout_secs", ""),
        ("window", ""),
        ("stop_on_failure", ""),
        ("canary_size", ""),
        ("canary_soak_secs", ""),
        ("canary_approval", CanaryApproval::Operator.as_str()),
        ("budget_max", ""),
        ("budget_action", BudgetAction::Pause.as_str()),
        ("retries", ""),
        ("retry_backoff_secs", ""),
        ("rollback", ""),
    ]
    .iter()
    .any(|(k, default)| {
        initial
            .get(k)
            .is_some_and(|v| !v.trim().is_empty() && v != default)
    });
    let release_value = value("release");
    let to_version_value = value("to_version");
    let offline_value = match value("offline_policy") {
        v if v.is_empty() => OfflinePolicy::Wait.as_str().to_string(),
        v => v,
    };
    let approval_value = match value("canary_approval") {
        v if v.is_empty() => CanaryApproval::Operator.as_str().to_string(),
        v => v,
    };
    let budget_action_value = match value("budget_action") {
        v if v.is_empty() => BudgetAction::Pause.as_str().to_string(),
        v => v,
    };

    view! {
        <Title text="New strategy"/>
        <nav class="breadcrumb" aria-label="Breadcrumb">
            <ol>
                <li><a href="/orchestration">"Orchestration"</a></li>
                <li aria-current="page">"New strategy"</li>
            </ol>
        </nav>
        <h1>"New strategy"</h1>
        <p class="lead">
            "Choose what to roll out and where, then preview: the waves, their sites and the time it takes. Nothing changes until you create the strategy, and nothing runs until you apply it."
        </p>
        <div class="strategy-new">
            <form
                method="get"
                action="/orchestration/new"
                class="strategy-form"
                aria-label="New strategy"
                node_ref=form_ref
                on:submit=on_submit
                on:input=on_edit.clone()
                on:change=on_edit
            >
                <fieldset class="form-group">
                    <legend>"What"</legend>
                    <SelectField
                        name="type"
                        label="Strategy type"
                        options=type_options
                        value=initial_type
                        on_change=move |v| kind.set(v)
                    />
                    <fieldset class="plain" hidden=hide_type_field("release") disabled=hide_type_field("release")>
                        <Transition fallback=|| ()>
                            {
                                let release_value = release_value.clone();
                                move || {
                                    let release_value = release_value.clone();
                                    Suspend::new(async move {
                                        let all = releases.await.unwrap_or_default();
                                        let options = release_options(&all, "software", &release_value);
                                        view! {
                                            <SelectField
                                                name="release"
                                                label="Release"
                                                hint="sw-deploy and prestage"
                                                options
                                                value=release_value
                                            />
                                        }
                                    })
                                }
                            }
                        </Transition>
                    </fieldset>
                    <fieldset class="plain" hidden=hide_type_field("to_version") disabled=hide_type_field("to_version")>
                        <Transition fallback=|| ()>
                            {
                                let to_version_value = to_version_value.clone();
                                move || {
                                    let to_version_value = to_version_value.clone();
                                    Suspend::new(async move {
                                        let all = releases.await.unwrap_or_default();
                                        let options = release_options(&all, "kubernetes", &to_version_value);
                                        view! {
                                            <SelectField
                                                name="to_version"
                                                label="Kubernetes version"
                                                hint="kubernetes"
                                                options
                                                value=to_version_value
                                            />
                                        }
                                    })
                                }
                            }
                        </Transition>
                    </fieldset>
                    <fieldset class="plain" hidden=hide_type_field("expiry_date") disabled=hide_type_field("expiry_date")>
                        <TextField name="expiry_date" label="Root CA expiry date" hint="kube-rootca-update; YYYY-MM-DD" input_type="date" value=value("expiry_date")/>
                        <TextField name="subject" label="Root CA subject" hint="kube-rootca-update; optional" value=value("subject") maxlength=128/>
                    </fieldset>
                    <fieldset class="plain" hidden=hide_type_field("for_install") disabled=hide_type_field("for_install")>
                        <CheckField name="for_install" label="For a fresh install (prestage)" checked=flag("for_install")/>
                    </fieldset>
                </fieldset>

                <fieldset class="form-group">
                    <legend>"Where"</legend>
                    <SelectField
                        name="target"
                        label="Target"
                        options=target_options
                        value=initial_target
                        on_change=move |v| target_kind.set(v)
                    />
                    <fieldset class="plain" hidden=hide_target_field(&["subcloud", "group", "peer_group"]) disabled=hide_target_field(&["subcloud", "group", "peer_group"])>
                        <label class="filter" for="f-target_name">
                            <span>"Target name"</span>
                            <input
                                id="f-target_name"
                                name="target_name"
                                type="text"
                                maxlength="64"
                                autocomplete="off"
                                value=value("target_name")
                                list=move || match target_kind.get().as_str() {
                                    "group" => "dl-groups",
                                    "peer_group" => "dl-peer-groups",
                                    _ => "",
                                }
                                aria-describedby="h-target_name"
                            />
                            <small class="hint" id="h-target_name">"The subcloud, group or peer group (exact name)"</small>
                        </label>
                        <Transition fallback=|| ()>
                            {move || Suspend::new(async move {
                                let c = choices.await.unwrap_or_default();
                                view! {
                                    <datalist id="dl-groups">
                                        {c.groups.into_iter().map(|g| view! { <option value=g></option> }).collect_view()}
                                    </datalist>
                                    <datalist id="dl-peer-groups">
                                        {c.peer_groups.into_iter().map(|g| view! { <option value=g></option> }).collect_view()}
                                    </datalist>
                                }
                            })}
                        </Transition>
                    </fieldset>
                    <fieldset class="plain" hidden=hide_target_field(&["filter"]) disabled=hide_target_field(&["filter"])>
                        <TextField
                            name="target_query"
                            label="Subcloud filter"
                            hint="The subcloud list's URL query, e.g. availability=online&group=Edge-EU"
                            value=value("target_query")
                            maxlength=1000
                            placeholder="availability=online&q=lyon"
                        />
                    </fieldset>
                </fieldset>

                <details class="more-settings" open=settings_open>
                    <summary>
                        "Rollout settings"
                        <span class="hint">" — parallelism, offline sites, window, canary, failures"</span>
                    </summary>
                <fieldset class="form-group">
                    <legend>"How"</legend>
                    <fieldset class="plain pair" disabled=group_target>
                        <SelectField
                            name="apply_type"
                            label="Apply type"
                            hint="Default parallel; a group target uses the group's own"
                            options=text_options("Default (parallel)", &apply_types)
                            value=value("apply_type")
                        />
                        <TextField
                            name="max_parallel"
                            label="Max parallel"
                            hint="Sites at a time; default: each group's own"
                            input_type="number"
                            min="1"
                            value=value("max_parallel")
                        />
                    </fieldset>
                    <SelectField name="offline_policy" label="Offline sites" hint="When a site's turn comes and it is offline" options=names(&offline) value=offline_value/>
                    <TextField name="step_timeout_secs" label="Step timeout (s)" hint="A step unfinished this long fails; default 3600" input_type="number" min="10" value=value("step_timeout_secs") placeholder="3600"/>
                    <TextField name="window" label="Maintenance window" hint="HH:MM-HH:MM in each site's local time; empty: any time" value=value("window") placeholder="01:00-05:00" maxlength=11/>
                    <CheckField name="stop_on_failure" label="Stop on the first failure" checked=flag("stop_on_failure")/>
                </fieldset>

                <fieldset class="form-group">
                    <legend>"Canary"</legend>
                    <p class="hint">"A first wave of a few sites, watched before the rest go."</p>
                    <TextField name="canary_size" label="Canary size" hint="Sites or a share, e.g. 5 or 10%; empty: no canary" value=value("canary_size") placeholder="5 or 10%" maxlength=8/>
                    <TextField name="canary_soak_secs" label="Soak time (s)" hint="Watch the canaries this long after they finish" input_type="number" min="0" value=value("canary_soak_secs") placeholder="0"/>
                    <SelectField name="canary_approval" label="After the canary" hint="operator: an operator approves the rest" options=names(&approvals) value=approval_value/>
                </fieldset>

                <fieldset class="form-group">
                    <legend>"Failures"</legend>
                    <TextField name="budget_max" label="Failure budget" hint="Failures a wave may have, e.g. 2 or 5%; empty: no budget" value=value("budget_max") placeholder="2 or 5%" maxlength=8/>
                    <SelectField name="budget_action" label="When the budget is exceeded" options=names(&budget_actions) value=budget_action_value/>
                    <TextField name="retries" label="Retries" hint="Extra attempts after a failure, 0–10" input_type="number" min="0" max="10" value=value("retries") placeholder="0"/>
                    <TextField name="retry_backoff_secs" label="Retry backoff (s)" hint="Before the first retry; doubled for each further one" input_type="number" min="0" value=value("retry_backoff_secs") placeholder="30"/>
                    <fieldset class="plain" hidden=hide_type_field("rollback") disabled=hide_type_field("rollback")>
                        <CheckField name="rollback" label="Roll failed sites back (sw-deploy)" checked=flag("rollback")/>
                    </fieldset>
                </fieldset>
                </details>

                <div class="form-actions">
                    <button type="submit" class="button-secondary" data-preview="">"Preview"</button>
                    <Transition fallback=|| ()>
                        {move || Suspend::new(async move {
                            let role = me.await.ok().flatten().map(|u| u.role);
                            if may_orchestrate(role) {
                                view! {
                                    <button
                                        type="submit"
                                        class="button-primary"
                                        data-create=""
                                        formaction="/ui/orchestration/create"
                                        formmethod="post"
                                        disabled=move || create.pending().get()
                                    >
                                        "Create strategy"
                                    </button>
                                }
                                .into_any()
                            } else {
                                view! {
                                    <p class="hint">"Previewing is open to everyone; creating a strategy needs the operator or admin role."</p>
                                }
                                .into_any()
                            }
                        })}
                    </Transition>
                    <a href="/orchestration/new" class="button-link">"Reset"</a>
                </div>
                <p class="hint">"Fields that do not apply to the chosen type or target are ignored."</p>
            </form>

            <section class="panel preview" aria-labelledby="preview-heading">
                <h2 id="preview-heading">"Preview"</h2>
                {move || {
                    create.value().get().and_then(Result::err).map(|e| {
                        view! { <Refusal error=e title="The strategy was not created"/> }
                    })
                }}
                <Transition fallback=|| view! { <p class="loading">"Computing the preview…"</p> }>
                    {move || Suspend::new(async move {
                        match preview.await {
                            Ok(None) => view! {
                                <p class="muted preview-empty">
                                    "Choose a type and a target, then Preview: the waves in order, their sites and the estimated time appear here."
                                </p>
                            }
                            .into_any(),
                            Ok(Some(PreviewOutcome::Ready(p))) => view! { <PreviewBody p/> }.into_any(),
                            Ok(Some(PreviewOutcome::Invalid { field, message })) => {
                                view! { <FieldError field message title="Check this field"/> }.into_any()
                            }
                            Err(e) => view! { <ErrorPanel error=e/> }.into_any(),
                        }
                    })}
                </Transition>
            </section>
        </div>
    }
}

/// Options of a release select: an empty choice, the known versions of `kind`, and the URL's
/// value if it is not among them (so that the refusal names what was asked for).
fn release_options(
    all: &[engine::orchestration::SoftwareRelease],
    kind: &str,
    current: &str,
) -> Vec<(String, String)> {
    let mut v = vec![(String::new(), "— choose —".to_string())];
    for r in all.iter().filter(|r| r.kind == kind) {
        let label = if r.description.is_empty() {
            r.version.clone()
        } else {
            format!("{} — {}", r.version, r.description)
        };
        v.push((r.version.clone(), label));
    }
    if !current.is_empty() && !v.iter().any(|(k, _)| k == current) {
        v.push((current.to_string(), current.to_string()));
    }
    v
}

/// A labelled select; `on_change` hears the new value (browser only).
#[component]
fn SelectField(
    name: &'static str,
    label: &'static str,
    options: Vec<(String, String)>,
    value: String,
    #[prop(optional)] hint: &'static str,
    #[prop(optional, into)] on_change: Option<Callback<String>>,
) -> impl IntoView {
    let id = format!("f-{name}");
    let label_for = id.clone();
    let hint_id = format!("h-{name}");
    let described = (!hint.is_empty()).then(|| hint_id.clone());
    view! {
        <label class="filter" for=label_for>
            <span>{label}</span>
            <select
                id=id
                name=name
                aria-describedby=described
                on:change=move |ev| {
                    if let Some(f) = on_change {
                        f.run(event_target_value(&ev));
                    }
                }
            >
                {options
                    .into_iter()
                    .map(|(v, l)| {
                        let selected = v == value;
                        view! { <option value=v selected=selected>{l}</option> }
                    })
                    .collect_view()}
            </select>
            {(!hint.is_empty()).then(|| view! { <small class="hint" id=hint_id>{hint}</small> })}
        </label>
    }
}

/// A labelled text (or number, date) input.
#[component]
fn TextField(
    name: &'static str,
    label: &'static str,
    value: String,
    #[prop(optional)] hint: &'static str,
    #[prop(optional)] input_type: &'static str,
    #[prop(optional)] placeholder: &'static str,
    #[prop(optional)] min: &'static str,
    #[prop(optional)] max: &'static str,
    #[prop(optional)] maxlength: Option<u32>,
) -> impl IntoView {
    let id = format!("f-{name}");
    let label_for = id.clone();
    let hint_id = format!("h-{name}");
    let described = (!hint.is_empty()).then(|| hint_id.clone());
    let input_type = if input_type.is_empty() {
        "text"
    } else {
        input_type
    };
    let numeric = input_type == "number";
    view! {
        <label class="filter" for=label_for>
            <span>{label}</span>
            <input
                id=id
                name=name
                type=input_type
                inputmode=numeric.then_some("numeric")
                value=value
                placeholder=(!placeholder.is_empty()).then_some(placeholder)
                min=(!min.is_empty()).then_some(min)
                max=(!max.is_empty()).then_some(max)
                maxlength=maxlength.map(|n| n.to_string())
                autocomplete="off"
                aria-describedby=described
            />
            {(!hint.is_empty()).then(|| view! { <small class="hint" id=hint_id>{hint}</small> })}
        </label>
    }
}

/// A checkbox sent as `name=on` when checked.
#[component]
fn CheckField(name: &'static str, label: &'static str, checked: bool) -> impl IntoView {
    let id = format!("f-{name}");
    let label_for = id.clone();
    view! {
        <label class="check" for=label_for>
            <input id=id type="checkbox" name=name checked=checked/>
            <span>{label}</span>
        </label>
    }
}

/// A refusal that names a field: its label (a link to it) and the message.
#[component]
fn FieldError(field: String, message: String, title: &'static str) -> impl IntoView {
    let known = FORM_FIELDS.contains(&field.as_str());
    let label = field_label(&field);
    view! {
        <div class="error-panel field-error" role="alert" data-field=field.clone()>
            <strong>{title}</strong>
            <p>
                {if known {
                    view! { <a href=format!("#f-{field}")>{label}</a> }.into_any()
                } else {
                    view! { <span>{label}</span> }.into_any()
                }}
                ": "
                <span class="field-error-message">{message}</span>
            </p>
        </div>
    }
}

/// Why Create was refused: a field, or another reason (another strategy of the type is active,
/// the role may not, …).
#[component]
fn Refusal(error: ApiError, title: &'static str) -> impl IntoView {
    match error {
        // The preview below checks the same fields and names the field: said once, there.
        ApiError::Invalid { field, .. } => view! {
            <p class="form-error create-refusal" role="alert" data-field=field>
                {format!("{title}: check the field below.")}
            </p>
        }
        .into_any(),
        other => view! {
            <div class="create-refusal">
                <p class="form-error">{title}</p>
                <ErrorPanel error=other/>
            </div>
        }
        .into_any(),
    }
}

/// The dry run: totals, where the estimate comes from, the sites that will wait, and the waves
/// in order.
#[component]
fn PreviewBody(p: StrategyPreview) -> impl IntoView {
    let waves = p.waves.len();
    let headline = format!(
        "{} {} in {} {}",
        group_digits(p.total_sites),
        if p.total_sites == 1 { "site" } else { "sites" },
        waves,
        if waves == 1 { "wave" } else { "waves" },
    );
    let source = if p.estimate_from > 0 {
        format!(
            "average of {} recorded {}",
            group_digits(p.estimate_from),
            if p.estimate_from == 1 {
                "step"
            } else {
                "steps"
            }
        )
    } else {
        "default estimate".to_string()
    };
    let what = if p.args.is_empty() {
        format!("{} ({})", type_label(p.strategy_type), p.strategy_type)
    } else {
        format!(
            "{} ({}): {}",
            type_label(p.strategy_type),
            p.strategy_type,
            p.args
        )
    };
    let total_eta = format_duration(p.eta_ms);
    let rows = p
        .waves
        .into_iter()
        .map(|w| {
            let more = w.sites.saturating_sub(w.first_sites.len() as u64);
            let first = w.first_sites.join(", ");
            view! {
                <tr data-wave=w.index.to_string()>
                    <td class="num">{(w.index + 1).to_string()}</td>
                    <th scope="row">{w.name}</th>
                    <td>{w.apply_type.as_str()}</td>
                    <td class="num">{group_digits(w.max_parallel.into())}</td>
                    <td class="num" data-sites=w.sites.to_string()>{group_digits(w.sites)}</td>
                    <td class="first-sites">
                        {first}
                        {(more > 0).then(|| view! { <span class="muted">{format!(" … and {} more", group_digits(more))}</span> })}
                    </td>
                    <td class="num eta">{format_duration(w.eta_ms)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <p class="preview-summary" role="status" data-sites=p.total_sites.to_string() data-waves=waves.to_string()>
            <strong>{headline}</strong>
            " · about "
            <strong data-eta=p.eta_ms.to_string()>{total_eta.clone()}</strong>
        </p>
        <dl class="props preview-facts">
            <dt>"What"</dt>
            <dd>{what}</dd>
            <dt>"Target"</dt>
            <dd>{p.target}</dd>
            <dt>"Per site"</dt>
            <dd data-estimate-from=p.estimate_from.to_string()>
                {format!("{} ({source})", format_duration(p.step_estimate_ms))}
            </dd>
            <dt>"Offline now"</dt>
            <dd data-offline=p.offline_now.to_string()>
                {format!("{} (handled by the offline policy)", group_digits(p.offline_now))}
            </dd>
            <dt>"Outside their window now"</dt>
            <dd data-outside-window=p.outside_window_now.to_string()>
                {format!("{} (they wait; not in the estimate)", group_digits(p.outside_window_now))}
            </dd>
            {(p.managed_elsewhere > 0).then(|| view! {
                <dt>"Managed by another controller"</dt>
                <dd class="warning" data-testid="managed-elsewhere" data-managed-elsewhere=p.managed_elsewhere.to_string()>
                    {format!(
                        "{} (this controller cannot give them commands: their steps wait; create the strategy on their owner, or target this controller's peer groups)",
                        group_digits(p.managed_elsewhere)
                    )}
                </dd>
            })}
        </dl>
        <h3 class="subheading">"Waves, in order"</h3>
        <TableScroll label="Waves, in order">
            <table class="data preview-waves">
                <caption class="visually-hidden">"Waves of the strategy, in the order they run"</caption>
                <thead>
                    <tr>
                        <th scope="col" class="num">"#"</th>
                        <th scope="col">"Wave"</th>
                        <th scope="col">"Apply"</th>
                        <th scope="col" class="num">"Max parallel"</th>
                        <th scope="col" class="num">"Sites"</th>
                        <th scope="col">"First sites"</th>
                        <th scope="col" class="num">"ETA"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
                <tfoot>
                    <tr>
                        <td></td>
                        <th scope="row">"Total"</th>
                        <td></td>
                        <td></td>
                        <td class="num">{group_digits(p.total_sites)}</td>
                        <td></td>
                        <td class="num eta" data-total-eta="">{total_eta}</td>
                    </tr>
                </tfoot>
            </table>
        </TableScroll>
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use leptos::wasm_bindgen::JsCast;
    use web_sys::js_sys;

    /// The fields a form would submit now (disabled fieldsets' controls are left out, as the
    /// browser does).
    pub fn form_pairs(form: &web_sys::HtmlFormElement) -> Vec<(String, String)> {
        let Ok(data) = web_sys::FormData::new_with_form(form) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Ok(Some(entries)) = js_sys::try_iter(&data) {
            for entry in entries.flatten() {
                let pair: js_sys::Array = entry.unchecked_into();
                if let (Some(k), Some(v)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                    out.push((k, v));
                }
            }
        }
        out
    }
}
