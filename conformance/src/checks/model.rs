//! MODEL: the stateful model-based phase (`--model`). One campaign of generated operation
//! sequences (see [`crate::model`]) runs once per run; each check judges one property of
//! it, with the shortest sequence that broke it and the seed in the evidence.

use std::sync::Arc;

use super::{Check, Ctx, Evidence, Scope, Verdict};
use crate::body;
use crate::model::{self, Campaign, Property};

pub fn checks() -> Vec<Check> {
    vec![
        Check::new("MODEL-01", Scope::AuthServer, body!(revocation_holds)),
        Check::new("MODEL-02", Scope::AuthServer, body!(rotation_holds)),
        Check::new("MODEL-03", Scope::AuthServer, body!(no_cross_user_data)),
        Check::new(
            "MODEL-04",
            Scope::AuthServer,
            body!(sessions_stay_with_their_user),
        ),
    ]
}

/// The run's campaign, started by whichever MODEL check asks first.
async fn campaign(cx: &Ctx) -> anyhow::Result<Option<Arc<Campaign>>> {
    let Some(settings) = cx.config().model.clone() else {
        return Ok(None);
    };
    let result = cx
        .shared
        .model
        .get_or_init(|| async {
            model::run(cx, &settings)
                .await
                .map(Arc::new)
                .map_err(|e| format!("{e:#}"))
        })
        .await;
    match result {
        Ok(c) => Ok(Some(c.clone())),
        Err(e) => anyhow::bail!("the model phase could not run: {e}"),
    }
}

fn not_requested() -> Verdict {
    Verdict::Skip(super::opt_in::MODEL.into())
}

/// The verdict for one property: a MUST finding is a violation, a SHOULD finding a warning.
fn judge(campaign: &Campaign, property: Property) -> Verdict {
    let evidence = |finding: &model::Finding, level: &str| Evidence {
        message: format!(
            "{level}: {} — shortest sequence ({} steps, seed {}): {}",
            finding.message,
            finding.sequence.len(),
            campaign.seed,
            model::describe(&finding.sequence),
        ),
        exchanges: Vec::new(),
    };
    if let Some(f) = campaign.finding(property, true) {
        return Verdict::Violation(evidence(f, "MUST"));
    }
    if let Some(f) = campaign.finding(property, false) {
        return Verdict::Warn(evidence(f, "SHOULD"));
    }
    Verdict::Pass(Some(format!(
        "{} sequences, {} operations, seed {}{}",
        campaign.sequences,
        campaign.operations,
        campaign.seed,
        if campaign.cut_short {
            " (the time budget ended the phase early)"
        } else {
            ""
        }
    )))
}

async fn judged(cx: Ctx, property: Property) -> anyhow::Result<Verdict> {
    Ok(match campaign(&cx).await? {
        Some(c) => judge(&c, property),
        None => not_requested(),
    })
}

async fn revocation_holds(cx: Ctx) -> anyhow::Result<Verdict> {
    judged(cx, Property::Revocation).await
}

async fn rotation_holds(cx: Ctx) -> anyhow::Result<Verdict> {
    judged(cx, Property::Rotation).await
}

async fn no_cross_user_data(cx: Ctx) -> anyhow::Result<Verdict> {
    judged(cx, Property::NoCrossUserData).await
}

async fn sessions_stay_with_their_user(cx: Ctx) -> anyhow::Result<Verdict> {
    judged(cx, Property::SessionBinding).await
}
