//! `[[plan]]`: references, schedule, objectives and retention.

use chrono::Utc;

use super::Checker;
use crate::duration::format_duration;
use crate::model::{Keep, Plan};
use crate::raw::{RawKeep, RawPlan};
use crate::schedule::Schedule;
use crate::spanned::Spanned;

pub(super) fn check(
    c: &mut Checker<'_>,
    raw: &RawPlan,
    source_names: &[&str],
    target_names: &[&str],
) -> Option<Plan> {
    let name = &raw.name.value;
    let sources = names(c, raw, &raw.sources, "source", source_names);
    let targets = names(c, raw, &raw.targets, "target", target_names);

    // A broken value is reported and then left out: the model is discarded whenever
    // anything was reported, so it only has to be right when nothing was.
    let schedule = raw.schedule.as_ref().and_then(|text| {
        Schedule::parse(&text.value)
            .map_err(|e| c.error(&text.span, format!("bad schedule for plan {name:?}: {e}")))
            .ok()
    });
    if raw.schedule.is_none() && !raw.continuous {
        c.error(
            &raw.name.span,
            format!("plan {name:?} has no schedule and is not continuous"),
        );
    }
    let rpo = raw.rpo.as_ref().and_then(|d| c.duration(d, "rpo"));
    let rto = raw.rto.as_ref().and_then(|d| c.duration(d, "rto"));
    if let (Some(schedule), Some(rpo), Some(rpo_text), false) =
        (&schedule, rpo, &raw.rpo, raw.continuous)
    {
        let gap = schedule.longest_gap(Utc::now());
        if rpo < gap {
            c.error(
                &rpo_text.span,
                format!(
                    "plan {name:?} can never meet its rpo of {}: its schedule leaves up to {} between backups; \
                     schedule it more often or make it continuous",
                    format_duration(rpo),
                    format_duration(gap)
                ),
            );
        }
    }
    let keep = raw.keep.as_ref().and_then(|k| keep(c, name, k));
    let drill = raw.drill.as_ref().and_then(|text| {
        Schedule::parse(&text.value)
            .map_err(|e| {
                c.error(
                    &text.span,
                    format!("bad drill schedule for plan {name:?}: {e}"),
                )
            })
            .ok()
    });
    let drill_at = match raw.drill_at.as_ref() {
        None => "latest".to_string(),
        Some(text) if ["latest", "random"].contains(&text.value.as_str()) => text.value.clone(),
        Some(text) => {
            c.error(
                &text.span,
                format!(
                    "plan {name:?}: drill_at is {:?}; it must be latest or random",
                    text.value
                ),
            );
            "latest".to_string()
        }
    };

    Some(Plan {
        name: name.clone(),
        sources: sources?,
        targets: targets?,
        schedule,
        continuous: raw.continuous,
        keep,
        rpo,
        rto,
        drill,
        drill_at,
    })
}

/// The plan's source or target names: present, not empty, declared, each once.
fn names(
    c: &mut Checker<'_>,
    plan: &RawPlan,
    list: &Option<Spanned<Vec<Spanned<String>>>>,
    kind: &str,
    declared: &[&str],
) -> Option<Vec<String>> {
    let plan_name = &plan.name.value;
    let Some(list) = list else {
        c.error(
            &plan.name.span,
            format!("plan {plan_name:?} has no {kind}s; list at least one in {kind}s = [...]"),
        );
        return None;
    };
    if list.value.is_empty() {
        c.error(&list.span, format!("plan {plan_name:?} has no {kind}s"));
        return None;
    }
    let mut ok = true;
    let mut names: Vec<String> = Vec::new();
    for name in &list.value {
        if !declared.contains(&name.value.as_str()) {
            c.error(
                &name.span,
                format!(
                    "plan {plan_name:?} names unknown {kind} {:?}{}",
                    name.value,
                    known(declared)
                ),
            );
            ok = false;
        } else if names.contains(&name.value) {
            c.error(
                &name.span,
                format!("plan {plan_name:?} lists {kind} {:?} twice", name.value),
            );
            ok = false;
        } else {
            names.push(name.value.clone());
        }
    }
    ok.then_some(names)
}

fn known(declared: &[&str]) -> String {
    if declared.is_empty() {
        " (none are defined)".to_string()
    } else {
        format!(" (defined: {})", declared.join(", "))
    }
}

fn keep(c: &mut Checker<'_>, plan_name: &str, raw: &Spanned<RawKeep>) -> Option<Keep> {
    let k = &raw.value;
    let within = match &k.within {
        Some(text) => Some(c.duration(text, "keep.within")?),
        None => None,
    };
    let keep = Keep {
        last: k.last,
        hourly: k.hourly,
        daily: k.daily,
        weekly: k.weekly,
        monthly: k.monthly,
        yearly: k.yearly,
        within,
        tags: k.tags.clone(),
    };
    if keep.keeps_nothing() {
        c.error(
            &raw.span,
            format!(
                "keep of plan {plan_name:?} keeps nothing; set last, hourly, daily, weekly, monthly, yearly, within or tags"
            ),
        );
        return None;
    }
    Some(keep)
}
